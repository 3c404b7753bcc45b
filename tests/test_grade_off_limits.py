"""The grader refuses the shortcuts that the notebook's check refuses: the compiled kernels behind
``torchvision.ops`` and the course's own code for an answer (the sandbox calls a submission's functions
through the same ``call_student``, under the same off-limits guard)."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from course_utils.tools.grade import command as gradebook

pytestmark = pytest.mark.slow   # runs a kernel and a sandbox process (about a minute)

SHORTCUTS = '''import torch
from course_utils.evaluation import detection
from course_utils.structures.boxes import paired_box_iou


def box_iou(boxes1, boxes2):
    return paired_box_iou(boxes1[:, None], boxes2[None])


def nms(boxes, scores, iou_threshold):
    return getattr(torch, "ops").torchvision.nms.default(boxes, scores, iou_threshold)


def roi_pool(features, boxes, output_size, spatial_scale=1.0):
    size = (output_size, output_size) if isinstance(output_size, int) else output_size
    if isinstance(boxes, (list, tuple)):
        boxes = torch.cat([torch.cat([torch.full((len(b), 1), float(i)), b], 1) for i, b in enumerate(boxes)])
    return torch.ops.torchvision.roi_pool(features, boxes, spatial_scale, size[0], size[1])[0]


def average_precision(preds, targets, max_dets=100):
    return detection.coco_map(preds, targets, max_dets)
'''


def test_the_grader_refuses_compiled_kernels_and_the_course_code(tmp_path: Path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(SHORTCUTS)])
    nb.metadata["course"] = {"lab": "05"}
    (tmp_path / "in").mkdir()
    nbformat.write(nb, tmp_path / "in" / "shortcuts.ipynb")
    code = gradebook.main([str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--cell-timeout", "60",
                           "--timeout", "240"])
    assert code == 0
    grades = json.loads((tmp_path / "out" / "grades.json").read_text())["submissions"]
    exercises = grades[0]["exercises"]
    for ex_id, name in (("05.box_iou", "course_utils.structures.boxes.paired_box_iou"),
                        ("05.nms", "torch.ops.torchvision.nms"),
                        ("05.average_precision", "course_utils.evaluation.detection.coco_map")):
        result = exercises[ex_id]
        assert result["status"] == "off_limits" and not result["passed"], result
        assert f"`{name}`" in result["message"] and "is off-limits inside it" in result["message"], result["message"]
    # a function whose code names torch.ops cannot be pickled out of the kernel today (cloudpickle takes
    # torch.ops along): it is reported as not saved, never as passed
    assert not exercises["05.roi_pool"]["passed"] and exercises["05.roi_pool"]["status"] in ("off_limits", "missing")
    assert exercises["05.match"]["status"] == "missing"
