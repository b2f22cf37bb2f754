"""The network: PilotNet (Bojarski et al. 2016) with conditional imitation's command branches.

PilotNet: a fixed normalisation layer, three 5×5 stride-2 convolutions (24, 36, 48), two 3×3
convolutions (64, 64), then fully connected layers, on a 66×200 crop of the camera. As in CIL
(Codevilla et al. 2018) the ego speed joins the image features, and the last layers are one head
per route command (follow / left / right / straight): without the command a junction is ambiguous.
As in CILRS (Codevilla et al. 2019) a second output predicts the ego speed from the image alone,
which regularises the features against the "inertia" shortcut (copying the speed input).

Outputs are steer [rad] and a target speed [m/s]: the speed the expert planned to have
`LOOKAHEAD_S` from now. The low-level step (`decode`) turns them into a control: the steer as is,
and accel = (target − speed) / LOOKAHEAD_S, i.e. the constant acceleration that reaches the
target in that time, both clipped to the vehicle's limits; the simulator's actuator then applies
its steer-rate and jerk limits. A target speed, not an accel, because the expert's accel is a
fast feedback term that one frame hardly predicts, while the speed it aims for is visible in the
scene (road, lights, leads); the feedback is then this fixed law. No planner, no MPC.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from drivestack.errors import UserError
from sim.route import COMMANDS
from sim.sensors.calibration import Mount
from sim.sensors.specs import CameraSpec
from sim.types import Command
from sim.vehicle_model import VehicleParams

FORMAT = "drivestack-e2e/1"
# targets are learnt in these units so that steer and speeds have a similar scale
STEER_SCALE = 0.2  # [rad]
SPEED_SCALE = 10.0  # [m/s]
LOOKAHEAD_S = 1.0  # the target speed is the expert's planned speed this far ahead [s]


@dataclass(frozen=True)
class InputSpec:
    """Camera frame → network input: keep rows [crop_top, crop_bottom) (drops the sky above the
    traffic lights and the road under the bumper), resize to height × width (PilotNet's 66 × 200)."""

    crop_top: int = 40
    crop_bottom: int = 146
    height: int = 66
    width: int = 200


def camera_config(spec: CameraSpec) -> dict:
    """A camera spec as plain JSON data: what the dataset manifest and the checkpoint record."""
    return json.loads(json.dumps(asdict(spec)))


def camera_spec(config: dict) -> CameraSpec:
    return CameraSpec(**{**config, "mount": Mount(**config["mount"])})


def preprocess(images: np.ndarray, spec: InputSpec) -> torch.Tensor:
    """(N, H, W, 3) or (H, W, 3) uint8 camera images → (N, 3, height, width) uint8 network input.

    Antialiased bilinear resizing, so that thin far objects (lights, lane marks) average in rather
    than alias away. Used both when recording and when driving, so the two can never differ. On
    uint8 in channels-last layout (the camera's own H×W×3) torch has a fast path: ~0.1 ms a frame."""
    x = torch.from_numpy(np.array(images, dtype=np.uint8, copy=True))
    x = x[None] if x.ndim == 3 else x
    if x.shape[1] < spec.crop_bottom:
        raise UserError(f"e2e input crop rows {spec.crop_top}–{spec.crop_bottom} do not fit a {x.shape[1]}-row camera")
    x = x[:, spec.crop_top:spec.crop_bottom].permute(0, 3, 1, 2)  # a channels-last view, no copy
    x = F.interpolate(x, size=(spec.height, spec.width), mode="bilinear", antialias=True, align_corners=False)
    return x.contiguous()


def _mlp(*sizes: int, dropout: float = 0.0) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-2], sizes[1:-1]):
        layers += [nn.Linear(a, b), nn.ReLU(inplace=True)] + ([nn.Dropout(dropout)] if dropout else [])
    return nn.Sequential(*layers, nn.Linear(sizes[-2], sizes[-1]))


class PilotNet(nn.Module):
    def __init__(self, spec: InputSpec = InputSpec(), dropout: float = 0.2) -> None:
        super().__init__()
        conv = [(3, 24, 5, 2), (24, 36, 5, 2), (36, 48, 5, 2), (48, 64, 3, 1), (64, 64, 3, 1)]
        layers: list[nn.Module] = []
        for c_in, c_out, k, s in conv:
            layers += [nn.Conv2d(c_in, c_out, k, stride=s), nn.ReLU(inplace=True)]  # ReLU: ~2× cheaper than ELU on CPU
        self.features = nn.Sequential(*layers, nn.Flatten())
        n = self.features(torch.zeros(1, 3, spec.height, spec.width)).shape[1]  # 1152 at 66×200
        self.speed_in = nn.Sequential(nn.Linear(1, 32), nn.ReLU(inplace=True))
        self.joint = nn.Sequential(nn.Linear(n + 32, 100), nn.ReLU(inplace=True), nn.Dropout(dropout))
        self.heads = nn.ModuleList(_mlp(100, 50, 10, 2) for _ in COMMANDS)  # (steer, target speed) per command
        self.speed_out = _mlp(n, 100, 1, dropout=dropout)
        self.to(memory_format=torch.channels_last)  # faster CPU convolutions (measured ~25%)

    def forward(self, image: torch.Tensor, speed: torch.Tensor, command: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """image (N, 3, h, w) uint8 (or float 0–255), speed (N,) [m/s], command (N,) index into sim.route.COMMANDS →
        the action (N, 2): steer and target speed in (STEER_SCALE, SPEED_SCALE) units from the
        command's own head, and the current speed predicted from the image (N,) in SPEED_SCALE units."""
        x = (image.float() / 127.5 - 1.0).contiguous(memory_format=torch.channels_last)  # PilotNet's normalisation
        f = self.features(x)
        j = self.joint(torch.cat([f, self.speed_in((speed / SPEED_SCALE)[:, None])], 1))
        every = torch.stack([head(j) for head in self.heads], 1)  # (N, commands, 2): cheap, and batches mix commands
        return every[torch.arange(len(command)), command], self.speed_out(f)[:, 0]

    def drive(self, image: torch.Tensor, speed: float, command: int) -> torch.Tensor:
        """`forward` for one frame when driving: only the command's head and no speed prediction,
        which saves ~0.5 ms of per-layer overhead a tick. Returns the action (2,) in scaled units."""
        x = (image.float() / 127.5 - 1.0).contiguous(memory_format=torch.channels_last)
        v = torch.full((1, 1), speed / SPEED_SCALE)
        return self.heads[command](self.joint(torch.cat([self.features(x), self.speed_in(v)], 1)))[0]


def decode(action, speed, vehicle: VehicleParams = VehicleParams()) -> tuple[np.ndarray, np.ndarray]:
    """The low-level step: scaled network output (2,) or (N, 2) and the current speed [m/s] →
    steer [rad] and the accel [m/s²] that reaches the target speed in LOOKAHEAD_S, both within
    the vehicle's limits."""
    a = np.asarray(action, dtype=np.float64)
    accel = (a[..., 1] * SPEED_SCALE - np.asarray(speed, dtype=np.float64)) / LOOKAHEAD_S
    return (np.clip(a[..., 0] * STEER_SCALE, -vehicle.max_steer, vehicle.max_steer),
            np.clip(accel, vehicle.min_accel, vehicle.max_accel))


@dataclass
class Policy:
    """A network with everything needed to drive it: its input crop, the camera it was trained on,
    the training set's statistics (the trivial baseline drives on them) and how it was made."""

    net: PilotNet
    camera: dict = field(default_factory=lambda: camera_config(CameraSpec()))
    spec: InputSpec = InputSpec()
    stats: dict = field(default_factory=dict)
    meta: dict = field(default_factory=dict)

    def act(self, image: np.ndarray, speed: float, command: Command) -> tuple[float, float]:
        """One camera frame (H, W, 3 uint8), the speed [m/s] and the command → (steer, accel)."""
        self.net.eval()
        with torch.inference_mode():
            steer, accel = decode(self.net.drive(preprocess(image, self.spec), float(speed), COMMANDS.index(command)), speed)
        return float(steer), float(accel)

    def save(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"format": FORMAT, "state_dict": self.net.state_dict(), "camera": self.camera,
                    "input": asdict(self.spec), "stats": self.stats, "meta": self.meta}, path)
        return path


def load_policy(path: Path, hint: str = "") -> Policy:
    """A saved policy; a missing or foreign file is a one-line UserError (with `hint`: how to make one)."""
    if not path.exists():
        raise UserError(f"e2e: no weights at {path}; {hint}" if hint else f"e2e: no weights at {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 — any unreadable file gets the same one-line answer
        raise UserError(f"e2e: {path} is not a torch checkpoint ({type(e).__name__}); {hint}") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise UserError(f"e2e: {path} is not a {FORMAT} checkpoint; {hint}")
    spec = InputSpec(**ckpt["input"])
    net = PilotNet(spec)
    net.load_state_dict(ckpt["state_dict"])
    return Policy(net.eval(), ckpt["camera"], spec, ckpt["stats"], ckpt["meta"])
