"""Make docs/town_loop.gif, the README's picture of the viewer: the default scenario (`town_loop`,
seed 0) driven by the expert, an excerpt at 5 fps and half size so that the file stays small.

    SDL_VIDEODRIVER=dummy .venv/bin/python scripts/readme_gif.py [START_S END_S]
"""
from __future__ import annotations

import sys
from pathlib import Path

from drivestack.video import record_episode

if __name__ == "__main__":
    start, end = (float(a) for a in sys.argv[1:3]) if len(sys.argv) > 2 else (31.0, 41.0)
    out = Path(__file__).resolve().parents[1] / "docs" / "town_loop.gif"
    record, frames = record_episode("town_loop", "expert", 0, out, scale=0.5, every=2, start_s=start, end_s=end)
    print(f"{out}: {frames} frames, {out.stat().st_size / 1e6:.1f} MB; episode {record['outcome']}, "
          f"score {record['driving_score']:.1f}")
