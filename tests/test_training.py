"""The training loop shared by the labs: it learns, resumes exactly, and rejects bad input clearly."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from course_utils.data import SceneBatches
from course_utils.training import History, TrainConfig, train

CPU = dict(device="cpu", progress=False)




def teacher_batches(step: int, batch: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed linear teacher labels random points with 3 classes (batch ``step`` is always the same)."""
    g = torch.Generator().manual_seed(1000 + step)
    x = torch.randn(batch, 4, generator=g)
    w = torch.tensor([[2.0, -1.0, 0.5, 0.0], [-1.0, 2.0, 0.0, 1.0], [0.0, 0.0, -2.0, 1.5]])
    return x, (x @ w.T).argmax(1)


def mlp(seed: int | None = None) -> nn.Module:
    """A small MLP with dropout (so resuming must restore the random state too)."""
    if seed is not None:
        torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 3))


def test_loss_decreases_on_a_tiny_problem():
    history = train(mlp(), teacher_batches, TrainConfig(steps=80, lr=1e-2, **CPU), loss_fn=F.cross_entropy)
    assert len(history.loss) == 80 and history.step == list(range(1, 81))
    first, last = sum(history.loss[:10]) / 10, sum(history.loss[-10:]) / 10
    assert last < 0.5 * first, (first, last)


def test_evaluate_hook_runs_in_eval_mode_at_the_requested_steps():
    modes = []

    def evaluate(model: nn.Module) -> dict[str, float]:
        modes.append(model.training)
        x, y = teacher_batches(10_000, 256)
        return {"accuracy": (model(x).argmax(1) == y).float().mean().item()}

    model = mlp()
    history = train(model, teacher_batches, TrainConfig(steps=60, lr=1e-2, eval_every=20, **CPU),
                    loss_fn=F.cross_entropy, evaluate=evaluate)
    assert history.eval_step == [20, 40, 60] and modes == [False, False, False]
    assert model.training  # back in train mode
    assert history.last("accuracy") > 0.8


def test_same_seed_same_result():
    runs = [train(mlp(seed=0), teacher_batches, TrainConfig(steps=15, seed=3, **CPU), loss_fn=F.cross_entropy).loss
            for _ in range(2)]
    assert runs[0] == runs[1]


class Interrupt(Exception):
    pass


def test_resume_from_checkpoint_equals_an_uninterrupted_run(tmp_path):
    config = dict(steps=20, lr=5e-3, checkpoint_every=5, **CPU)
    full_model = mlp(seed=0)
    full = train(full_model, teacher_batches, TrainConfig(checkpoint=tmp_path / "full.pt", **config),
                 loss_fn=F.cross_entropy)

    def crashing(step: int):
        if step == 13:                                       # dies after the checkpoint at step 10
            raise Interrupt
        return teacher_batches(step)

    path = tmp_path / "run.pt"
    with pytest.raises(Interrupt):
        train(mlp(seed=0), crashing, TrainConfig(checkpoint=path, **config), loss_fn=F.cross_entropy)
    assert torch.load(path, weights_only=False)["step"] == 10

    resumed_model = mlp(seed=123)                            # a different init: the checkpoint wins
    resumed = train(resumed_model, teacher_batches, TrainConfig(checkpoint=path, **config), loss_fn=F.cross_entropy)
    assert resumed.loss == full.loss                         # dropout masks and batches replayed exactly
    for a, b in zip(full_model.state_dict().values(), resumed_model.state_dict().values()):
        assert torch.equal(a, b)


def test_resume_with_a_shuffling_dataloader(tmp_path):
    x, y = teacher_batches(0, 40)
    loader = DataLoader(TensorDataset(x, y), batch_size=8, shuffle=True)   # 5 batches per epoch
    config = dict(steps=12, lr=5e-3, checkpoint_every=7, **CPU)
    full = train(mlp(seed=0), loader, TrainConfig(**config), loss_fn=F.cross_entropy)
    path = tmp_path / "run.pt"
    with pytest.raises(Interrupt):  # crashes in the second epoch, after the checkpoint at step 7
        train(mlp(seed=0), CrashAfter(loader, 9), TrainConfig(checkpoint=path, **config), loss_fn=F.cross_entropy)
    resumed = train(mlp(seed=5), loader, TrainConfig(checkpoint=path, **config), loss_fn=F.cross_entropy)
    assert resumed.loss == full.loss


class CrashAfter:
    """A loader that raises after ``n`` batches in total (to simulate a crash mid-epoch)."""

    def __init__(self, loader: DataLoader, n: int):
        self.loader, self.n, self.served = loader, n, 0

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        for batch in self.loader:
            if self.served == self.n:
                raise Interrupt
            self.served += 1
            yield batch


class LossDictModel(nn.Module):
    """Like torchvision's detection models: lists in, a dict of losses out in train mode."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(3.0))
        self.shift = nn.Parameter(torch.tensor(-2.0))

    def forward(self, images: list[torch.Tensor], targets: list[dict[str, torch.Tensor]]):
        pred = torch.stack([self.scale * im.mean() + self.shift for im in images])
        want = torch.stack([t["value"] for t in targets])
        return {"loss_a": ((pred - want) ** 2).mean(), "loss_b": 0.1 * self.shift.abs()}


def test_a_model_returning_a_dict_of_losses():
    def batches(step: int):
        g = torch.Generator().manual_seed(step)
        images = [torch.rand(3, 4, 4, generator=g) for _ in range(4)]
        return images, [{"value": 2 * im.mean()} for im in images]

    history = train(LossDictModel(), batches, TrainConfig(steps=100, lr=0.05, **CPU))
    assert set(history.parts) == {"loss_a", "loss_b"}
    for total, a, b in zip(history.loss, history.parts["loss_a"], history.parts["loss_b"]):
        assert total == pytest.approx(a + b, rel=1e-5)
    assert history.loss[-1] < 0.2 * history.loss[0]


@pytest.mark.parametrize("kwargs, words", [
    ({"lr": -0.1}, "lr"), ({"lr": 0}, "lr"), ({"steps": 0}, "steps"), ({"steps": 2.5}, "steps"),
    ({"optimizer": "adam!"}, "optimizer"), ({"eval_every": -1}, "eval_every"), ({"grad_clip": 0}, "grad_clip"),
])
def test_bad_config_is_a_clear_value_error(kwargs, words):
    with pytest.raises(ValueError, match=words):
        train(mlp(), teacher_batches, TrainConfig(**kwargs, **CPU), loss_fn=F.cross_entropy)


def test_missing_loss_is_a_clear_value_error():
    with pytest.raises(ValueError, match="loss_fn"):
        train(nn.Linear(4, 3), lambda step: (teacher_batches(step)[0], None), TrainConfig(steps=2, **CPU))
    with pytest.raises(ValueError, match="loss_fn must be a function"):
        train(mlp(), teacher_batches, TrainConfig(steps=2, **CPU), loss_fn="cross_entropy")
    with pytest.raises(ValueError, match="scalar"):
        train(mlp(), teacher_batches, TrainConfig(steps=2, **CPU),
              loss_fn=lambda out, y: F.cross_entropy(out, y, reduction="none"))
    with pytest.raises(TypeError, match="TrainConfig"):
        train(mlp(), teacher_batches, {"steps": 2}, loss_fn=F.cross_entropy)
    with pytest.raises(ValueError, match="non-empty iterable"):
        train(mlp(), [], TrainConfig(steps=2, **CPU), loss_fn=F.cross_entropy)


def test_diverging_loss_says_what_to_do():
    with pytest.raises(FloatingPointError, match="lr"):
        train(mlp(), teacher_batches, TrainConfig(steps=5, **CPU), loss_fn=lambda out, y: out.sum() / 0.0)


def test_scene_batches_are_deterministic_and_pool_draws_from_a_fixed_set():
    from course_utils.data import SceneConfig

    config = SceneConfig(size=32)
    stream = SceneBatches(config, 4, seed=1)
    images, masks = stream(3)
    assert images.shape == (4, 3, 32, 32) and masks.shape == (4, 32, 32) and masks.dtype == torch.int64
    assert torch.equal(stream(3)[0], images) and not torch.equal(stream(4)[0], images)
    pool = SceneBatches(config, 4, seed=1, pool=8)
    assert all(0 <= i < 8 for step in range(5) for i in pool.indices(step))
    assert torch.equal(pool(0)[0], stream.__class__(config, 4, seed=1)._render(pool.indices(0)).images)
    det_images, targets = SceneBatches(config, 2, task="detection")(0)
    assert len(det_images) == 2 and {"boxes", "labels", "masks"} <= set(targets[0])
    with pytest.raises(ValueError, match="batch_size"):
        SceneBatches(config, 0)


def test_history_last():
    h = History(loss=[3.0, 2.0], metrics={"mIoU": [0.5, 0.7]})
    assert h.last("loss") == 2.0 and h.last("mIoU") == 0.7
    with pytest.raises(KeyError, match="mIoU"):
        h.last("accuracy")


def test_optimizer_and_schedule_take_plain_arguments():
    from course_utils.training.optim import lr_factor, make_optimizer

    f = lr_factor(steps=10, warmup=2)
    assert [round(f(s), 3) for s in (0, 1, 2, 6, 10)] == [0.5, 1.0, 1.0, 0.5, 0.0]
    assert lr_factor(10, 0, "constant")(9) == 1.0
    model = nn.Linear(3, 2)
    opt = make_optimizer(model, "sgd", lr=0.1, weight_decay=0.5)
    assert isinstance(opt, torch.optim.SGD) and [g["weight_decay"] for g in opt.param_groups] == [0.5, 0.0]
    with pytest.raises(ValueError, match="'adamw' or 'sgd'"):
        make_optimizer(model, "adam")


def test_recipes_take_overrides_of_their_own_types():
    import dataclasses

    from course_utils.training.recipes import with_overrides
    from course_utils.training.recipes.detection import FASTER_RCNN, YOLO
    from course_utils.training.recipes.segmentation import FCN

    steps = FASTER_RCNN["cpu"].steps
    r = with_overrides(FASTER_RCNN["cpu"], ["steps=300", "anchors=8,16,32", "pool=none", "lr=1e-3"])
    assert (r.steps, r.anchors, r.pool, r.lr) == (300, (8, 16, 32), None, 1e-3)
    assert with_overrides(YOLO["ci"], ["flip=false"]).flip is False
    assert with_overrides(FCN["gpu"], ["pool=128"]).pool == 128
    assert steps != 300 and FASTER_RCNN["cpu"].steps == steps    # frozen: the recipe itself is unchanged
    with pytest.raises(ValueError, match="KEY one of"):
        with_overrides(FCN["ci"], ["stepz=3"])
    with pytest.raises(dataclasses.FrozenInstanceError):
        FCN["ci"].steps = 3


def test_timing_counts_every_call_after_the_warm_up():
    import time

    from course_utils.evaluation.timing import images_per_second, seconds_per_call

    calls = []
    seconds = seconds_per_call(lambda i: (calls.append(i), time.sleep(0.01)), 3, warmup=2)
    assert calls == [0, 0, 0, 1, 2] and 0.009 < seconds < 0.5
    batches = []
    rate = images_per_second(lambda b: batches.append(len(b)), torch.zeros(10, 3, 4, 4), batch_size=4)
    assert batches == [4, 4, 4, 2] and rate > 0                # a warm-up batch, then 4 + 4 + 2 images
    with pytest.raises(ValueError, match="images is empty"):
        images_per_second(lambda b: None, torch.zeros(0, 3, 4, 4))
