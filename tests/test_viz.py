import matplotlib.pyplot as plt
import pytest
import torch

from course_utils import viz
from course_utils.data import SceneConfig, render_scenes


def test_drawings_of_a_scene():
    config = SceneConfig(size=32)
    scenes = render_scenes(config, range(2))
    target = scenes.target(0)
    fig, axes = plt.subplots(1, 4)
    viz.show_mask(target["semantic"], config.categories, image=scenes.images[0], ax=axes[0])
    viz.show_boxes(scenes.images[0], target["boxes"], target["labels"], config.detection_classes,
                   scores=torch.ones(len(target["boxes"])), ax=axes[1])
    viz.show_panoptic(target["panoptic"], config.categories, ax=axes[2])
    viz.show_image(scenes.images[1][:1], ax=axes[3])
    assert len(axes[1].patches) == len(target["boxes"])
    assert axes[0].get_legend() is not None
    grid = viz.image_grid(list(scenes.images), ["a", "b"], ncols=2)
    assert len(grid.axes) == 2
    plt.close("all")


def test_panoptic_colours_separate_instances_of_one_category():
    panoptic = torch.zeros(4, 4, 2, dtype=torch.long)
    panoptic[:2, :, 0], panoptic[:2, :2, 1], panoptic[:2, 2:, 1] = 3, 1, 2
    colours = viz.panoptic_colors(panoptic, 4)
    assert colours.shape == (4, 4, 3)
    assert (colours[0, 0] != colours[0, 3]).any(), "two instances of a class get different shades"
    assert (colours[3, 0] == colours[3, 3]).all()


def test_bad_input_is_explained():
    with pytest.raises(ValueError, match=r"labels must be in \[0, 3\)"):
        viz.colorize(torch.tensor([[0, 5]]), 3)
    with pytest.raises(ValueError, match="1 or 3 channels"):
        viz.show_image(torch.rand(4, 8, 8))
    with pytest.raises(ValueError, match="N x 4"):
        viz.show_boxes(torch.rand(3, 8, 8), torch.zeros(2, 5))
    with pytest.raises(ValueError, match="panoptic must be 3-D"):
        viz.panoptic_colors(torch.zeros(4, 4, dtype=torch.long), 2)
    with pytest.raises(ValueError, match="H x W x 2"):
        viz.panoptic_colors(torch.zeros(4, 4, 3, dtype=torch.long), 2)
    with pytest.raises(ValueError, match="must match"):
        viz.show_mask(torch.zeros(4, 4, dtype=torch.long), ["a"], image=torch.rand(3, 5, 5))
    plt.close("all")


def test_panoptic_void_is_black_and_in_the_legend():
    panoptic = torch.zeros(4, 4, 2, dtype=torch.long)
    panoptic[0, 0, 0], panoptic[0, 1, 0], panoptic[1, :, 0] = -1, 9, 2      # VOID, an unknown category, class 2
    colours = viz.panoptic_colors(panoptic, 3)
    assert (colours[0, 0] == 0).all() and (colours[0, 1] == 0).all() and (colours[1, 0] > 0).any()
    ax = viz.show_panoptic(panoptic, ["sky", "ground", "water"])
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["sky", "water", "void"]
    ax = viz.show_panoptic(torch.zeros(4, 4, 2, dtype=torch.long), ["sky", "ground"])
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["sky"]
    plt.close("all")


def test_segment_errors_drawn_one_row_each_with_the_reason():
    from course_utils.evaluation.panoptic import segment_errors
    from course_utils.exercises.lab08 import STUFFS, THINGS, _map

    names = ["sky", "ground", "water", "circle", "square", "triangle"]
    pred = torch.stack([_map("AAAAAs", "AAAAAs", "sssBBs", "sssBBs", "ggwwww", "ggwwww")] * 2)
    target = torch.stack([_map("AAAAss", "AAAAss", "ssssss", "ssss..", "gggggg", "gggggg")] * 2)
    errors = segment_errors(pred, target, THINGS, STUFFS, names=names)
    images = torch.rand(2, 3, 6, 6)
    fig = viz.show_segment_errors(errors, pred, target, names, images=images, limit=3)
    assert len(fig.axes) == 9
    assert fig.axes[0].get_title(loc="left") == f"{errors[0].kind}: {errors[0].reason}"
    assert all(ax.collections for ax in fig.axes), "each panel outlines the segment"
    fig = viz.show_segment_errors([e for e in errors if e.image == 0][:2], pred[0], target[0], names)
    assert len(fig.axes) == 4
    with pytest.raises(ValueError, match="no errors"):
        viz.show_segment_errors([], pred, target, names)
    late = [e for e in errors if e.image == 1]
    with pytest.raises(ValueError, match="pass the maps"):
        viz.show_segment_errors(late, pred[0], target[0], names)
def test_yolo_grid_lines_and_shaded_cells():
    _, ax = plt.subplots()
    viz.show_image(torch.rand(3, 96, 64), ax)
    viz.draw_grid(ax, 4, (96, 64), cells=[(0, 3), (2, 1)])
    rows = sorted(line.get_ydata()[0] for line in ax.lines if line.get_ydata()[0] == line.get_ydata()[1])
    assert rows == [23.5, 47.5, 71.5]                       # 3 inner row lines of 24-pixel cells, pixel centres at ints
    shaded = sorted((p.get_x(), p.get_y(), p.get_width(), p.get_height()) for p in ax.patches)
    assert shaded == [(15.5, 47.5, 16.0, 24.0), (47.5, -0.5, 16.0, 24.0)]   # (row 2, col 1) and (row 0, col 3)
    with pytest.raises(ValueError, match=r"cells must be \(row, col\) pairs in 0 \.\. 3"):
        viz.draw_grid(ax, 4, 96, cells=[(4, 0)])
    plt.close("all")


def test_loss_parts_one_panel_each_block_means():
    from course_utils.training.history import History
    from course_utils.viz.training import part_title, plot_loss_parts

    history = History()
    for step in range(1, 101):
        history.record(step, 3.0, {"loss_objectness": float(step), "loss_rpn_box_reg": 1.0})
    axes = plot_loss_parts(history, points=10)
    assert [ax.get_title() for ax in axes] == ["objectness", "rpn box reg"]
    x, y = axes[0].lines[0].get_data()
    assert list(x) == list(range(10, 101, 10))               # the last step of each block of 10
    assert list(y) == [5.5 + 10 * k for k in range(10)]      # the mean of steps 1..10, 11..20, ...
    assert axes[0].get_yscale() == "log"
    assert part_title("no_object") == "no object"
    with pytest.raises(ValueError, match="history.parts is empty"):
        plot_loss_parts(History())
    plt.close("all")
