"""Many scenes: a folder of scenes, whole scenes shared among processes, and the run summary.

``btdnet-predict --image FOLDER --text ... --tile auto`` predicts every scene file of the
folder (``SCENE_SUFFIXES``, sorted by name, not recursive); a prompts file lists scenes too.
Under ``accelerate launch --num_processes N`` with several scene jobs, job ``i`` (in the
order of the folder or the prompts file) goes to process ``i mod N``: each scene is run and
written by exactly one process, by itself (:class:`~btdnet.predict.scene.pipeline.Processes`
``alone``), so N GPUs (or N CPU processes) work on N scenes at once. One scene alone is
shared by rows instead. The records are gathered on the main process, which writes them to
``predictions.jsonl`` in job order, then ``summary.json``. Files do not depend on N: a scene
is computed the same way whichever process runs it. With ``--resume`` a scene finished with
the same options is not run again (``reused`` in the summary) and an interrupted one keeps
its finished rows, whatever N was before.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from btdnet.safe_write import write_text_atomic

SCENE_SUFFIXES = (".tif", ".tiff", ".png", ".jpg", ".jpeg")
SUMMARY_FILE = "summary.json"


def scene_files(folder: Path) -> list[Path]:
    """The scene files of ``folder`` sorted by name (ValueError: none, or two share a stem,
    which would give two scenes the same output names)."""
    files = sorted(
        path
        for path in folder.iterdir()
        if path.suffix.lower() in SCENE_SUFFIXES
        and path.is_file()
        and not path.name.startswith(".")
    )
    if not files:
        raise ValueError(f"{folder}: no scene files ({', '.join(SCENE_SUFFIXES)}) in the folder")
    stems = Counter(path.stem for path in files)
    doubled = sorted(stem for stem, count in stems.items() if count > 1)
    if doubled:
        raise ValueError(
            f"{folder}: {', '.join(doubled)}: two files share a name, their outputs would "
            "collide; move one away"
        )
    return files


@dataclass
class JobOutcome:
    """What one job reported, in order: ``("record" | "note" | "warning" | "error", payload)``."""

    index: int
    process: int
    items: list[tuple[str, Any]] = field(default_factory=list)
    reused: bool = False

    @property
    def failed(self) -> bool:
        return any(kind == "error" for kind, _ in self.items)


class CollectingReporter:
    """Keeps what a job reports (to gather it on the main process) and passes it on to
    ``inner`` (the main process's reporter, when the job runs there and streams)."""

    def __init__(self, outcome: JobOutcome, inner: Any = None) -> None:
        self.outcome, self.inner = outcome, inner

    def record(self, record: dict[str, Any]) -> None:
        self.outcome.items.append(("record", record))
        if self.inner is not None:
            self.inner.record(record)

    def note(self, message: str | None) -> None:
        if message:
            self.outcome.items.append(("note", message))
            if self.inner is not None:
                self.inner.note(message)

    def warning(self, message: str) -> None:
        self.outcome.items.append(("warning", message))
        if self.inner is not None:
            self.inner.warning(message)

    def error(self, message: str, count: int = 1) -> None:
        self.outcome.items.append(("error", message))
        if self.inner is not None:
            self.inner.error(message, count)


def my_jobs(count: int, index: int, processes: int, share_scenes: bool) -> list[int]:
    """The jobs this process runs: ``i mod processes == index`` when whole scenes are shared,
    else all of them (the processes share the rows of each)."""
    if not share_scenes:
        return list(range(count))
    return [i for i in range(count) if i % processes == index]


def replay(outcomes: list[JobOutcome], reporter: Any) -> None:
    """Report gathered outcomes in job order (the main process, after sharing scenes)."""
    for outcome in sorted(outcomes, key=lambda o: o.index):
        for kind, payload in outcome.items:
            getattr(reporter, kind)(payload)


def summary(
    outcomes: list[JobOutcome], problems: int, processes: int, seconds: float
) -> dict[str, Any]:
    """The run's totals: jobs, done (of which reused), failed, and the jobs per process."""
    done = [o for o in outcomes if not o.failed]
    per_process = Counter(o.process for o in outcomes)
    return {
        "jobs": len(outcomes) + problems,
        "done": len(done),
        "reused": sum(o.reused for o in done),
        "failed": len(outcomes) - len(done) + problems,
        "processes": processes,
        "jobs_per_process": [per_process.get(p, 0) for p in range(processes)],
        "objects": sum(
            payload.get("objects", 0) for o in done for kind, payload in o.items if kind == "record"
        ),
        "wall_seconds": round(seconds, 3),
    }


def write_summary(out_dir: Path, totals: dict[str, Any]) -> str:
    """Write ``summary.json``; returns the one line for stderr."""
    write_text_atomic(out_dir / SUMMARY_FILE, json.dumps(totals, indent=1))
    return (
        f"{totals['jobs']} scene job(s): {totals['done']} done ({totals['reused']} reused), "
        f"{totals['failed']} failed; {totals['processes']} process(es), "
        f"{totals['wall_seconds']:.1f} s; {out_dir / SUMMARY_FILE}"
    )
