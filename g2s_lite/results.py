"""Results files: what a benchmark run leaves behind, and the edits made to it afterwards.

Chapter 7's benchmark (:mod:`~g2s_lite.benchmark`) fills a results file face by face; this
module is the bookkeeping around it, read top to bottom:

1. the files: ``X.json`` and its depth sidecar :func:`depths_path`, replaced whole by
   :func:`write` (never half written) and read back by :func:`read`;
2. the table: :class:`Table` says which methods a file's rows are and what they are
   compared with, :func:`rows` averages them, :func:`markdown` writes them out, table first
   and the commands that made the file in a short list at the end;
3. a run that goes on: :func:`resume` gives back what an interrupted run had done;
4. the edits: :func:`merge` joins a file made alongside (a share, other methods), :func:`drop`
   removes rows to run again, :func:`rename` renames one, :func:`add_note` explains them;
5. a run as it goes: a :class:`Ledger` keeps what it measures in its files, resumed, and
   the shares of the processes of a ``torchrun`` run joined at the end.

A results file is ``{"rows": [...], "meta": {...}, "images": {...}}``: ``images`` maps a
face's index (a string) to ``{method: {"side", "mad", "seconds"[, "view"]}}`` (and the
seconds the projection took, ``project_seconds``); ``rows`` holds one average per method;
``meta`` how the file was made (``command``, ``earlier_commands`` of the runs it resumed,
``merged_from``, ``device``, ``wall_seconds``, the test faces' ``seed`` and ``n_images``, the
``preset``, ``quick``) and what belongs to some rows only: the nets the pretrained rows
started from (``pretrained``), the supervised bound's training (:data:`SUPERVISED_META`),
the rows ``dropped``, those ``renamed`` and the ``notes``.

The same edits from a shell (``--markdown`` rewrites a table beside the file)::

    python -m g2s_lite.results merge results/synface64.json runs/share2/synface64.json
    python -m g2s_lite.results drop results/synface64.json supervised --reason "new trainer"
    python -m g2s_lite.results rename results/synface64_joint.json g2s_pretrained g2s_joint
    python -m g2s_lite.results note results/synface64.json "made on a CPU"
    python -m g2s_lite.results markdown results/synface64.json --out results/synface64.md
"""
from __future__ import annotations

import argparse
import importlib
import importlib.resources
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from .hub import BOOK_GAN
from .runtime import SOLO, World

#: What ``meta`` records of the supervised bound's training: it belongs with the row, so
#: :func:`drop` removes it with the last ``supervised`` entry and :func:`merge` brings it in.
SUPERVISED_META = ("supervised_training_seconds", "supervised_steps")
#: What a run must share with the file it resumes: the same test faces (a resumed run may
#: go on to more of them) under the same schedule (quick mode renames the preset) with the
#: same GAN (recorded only when it is not the book's).
SAME_RUN = ("seed", "preset", "gan")


def gan_record(gan: str) -> dict:
    """What a results file's ``meta`` records of the GAN its run used (benchmark and chain):
    nothing for the book's GAN, which made every file written before the record, else its
    hub name or file, so that :data:`SAME_RUN` keeps the two apart.

    >>> gan_record("synface64"), gan_record("runs/longer.pt")
    ({}, {'gan': 'runs/longer.pt'})
    """
    return {} if gan == BOOK_GAN else {"gan": gan}


def gan_label(meta: dict) -> str:
    """The GAN for a table's title: empty for the book's (:func:`gan_record`)."""
    return f", GAN {meta['gan']}" if meta.get("gan") else ""
#: What two files must share to be merged: the same run over the same number of faces.
SAME_FACES = (*SAME_RUN, "n_images", "quick")
#: What a resumed run carries over from the file it continues.
CARRIED_META = ("merged_from", "merged_wall_seconds", "pretrained", "dropped", "renamed",
                "notes", *SUPERVISED_META)


# ----------------------------------------------------------------------------- the files
def depths_path(out: str | Path) -> Path:
    """Where the predicted depth maps of a results file ``out`` are kept.

    ``torch.load`` gives ``{image index: {method: S×S}}`` for the methods that are not
    constant maps, holding depth − 1 in float16 (exact to 1e-4 over the depth range; a
    quarter of the size of float32 depth) and NaN where the reconstruction does not cover
    the pixel. ``1 + stored.float()`` is the depth again.

    >>> depths_path("results/synface64.json").as_posix()
    'results/synface64.depths.pt'
    """
    out = Path(out)
    return out.with_name(out.stem + ".depths.pt")


def unkept(stored: Tensor) -> tuple[Tensor, Tensor]:
    """A depth map as :func:`depths_path` keeps it (``S×S``) made whole again: the depth
    ``1×S×S`` (1 where it was not covered) and where it is valid, ``1×1×S×S``.

    >>> depth, valid = unkept(torch.tensor([[0.5, float("nan")]]))
    >>> depth.tolist(), valid.tolist()
    ([[[1.5, 1.0]]], [[[[1.0, 0.0]]]])
    """
    depth = 1 + stored.float()
    return depth.nan_to_num(1.0)[None], (~depth.isnan()).float()[None, None]


def write(result: dict, depths: dict, out: str | Path | None,
          markdown_out: str | Path | None = None, table: "Table | None" = None) -> dict:
    """Write a results file and its depth sidecar (and, given ``table``, its markdown);
    return ``result``.

    Both files are written aside first and then renamed over the old ones, the depths
    first: a run killed while writing leaves a JSON file whose every entry has its depth map
    beside it (at worst the sidecar holds a map more, which a resumed run makes again), for
    :func:`resume` to read.
    """
    if out is not None:
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        json_tmp, depths_tmp = out.with_suffix(".tmp"), out.with_suffix(".depths.tmp")
        json_tmp.write_text(json.dumps(result, indent=1))
        torch.save(depths, depths_tmp)
        depths_tmp.replace(depths_path(out))
        json_tmp.replace(out)
    if markdown_out is not None:
        if table is None:
            raise ValueError("a markdown table needs its Table (which methods, compared with "
                             "what): pass table=")
        Path(markdown_out).parent.mkdir(parents=True, exist_ok=True)
        Path(markdown_out).write_text(markdown(result, table))
    return result


def write_json(result: dict, out: str | Path, digits: int | None = None) -> Path:
    """Write ``result`` as JSON to ``out``, aside first and then renamed over it (never half
    written), every float rounded to ``digits`` decimals when given (a file that stays
    readable and small): results files without depth maps, such as Chapter 8's.

    >>> import tempfile
    >>> path = write_json({"a": [1 / 3, 2]}, Path(tempfile.mkdtemp()) / "r.json", digits=3)
    >>> json.loads(path.read_text())
    {'a': [0.333, 2]}
    """
    def rounded(x):
        if isinstance(x, float):
            return round(x, digits)
        if isinstance(x, dict):
            return {k: rounded(v) for k, v in x.items()}
        return [rounded(v) for v in x] if isinstance(x, (list, tuple)) else x

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(result if digits is None else rounded(result), indent=1))
    tmp.replace(out)
    return out


def part_path(out: str | Path, rank: int) -> Path:
    """Where process ``rank`` of a ``torchrun`` run keeps what it has done until the
    processes join their shares into ``out`` (:func:`parts` finds them again).

    >>> part_path("results/synface64.json", 1).as_posix()
    'results/synface64.rank1.json'
    """
    out = Path(out)
    return out.with_name(f"{out.stem}.rank{rank}{out.suffix}")


def parts(out: str | Path) -> list[Path]:
    """The :func:`part_path` files of ``out`` on this machine (left by a ``torchrun`` run
    stopped before it joined them), whatever the number of processes that wrote them."""
    out = Path(out)
    return sorted(p for p in out.parent.glob(f"{out.stem}.rank*{out.suffix}")
                  if p.stem.removeprefix(f"{out.stem}.rank").isdigit())


def remove(out: str | Path) -> None:
    """Delete a results file and its depth sidecar, if they are there."""
    for path in (Path(out), depths_path(out)):
        path.unlink(missing_ok=True)


def read(out: str | Path) -> tuple[dict, dict]:
    """A results file and its depth sidecar (empty when there is none), as written."""
    out = Path(out)
    if not out.exists():
        raise FileNotFoundError(f"{out} does not exist: give a benchmark's results file (.json)")
    result = json.loads(out.read_text())
    if not {"rows", "images", "meta"} <= set(result):
        raise ValueError(f"{out} is not a benchmark results file (rows, images, meta): give "
                         "one that python -m g2s_lite.benchmark wrote")
    return result, (torch.load(depths_path(out), weights_only=True)
                    if depths_path(out).exists() else {})


#: The results the chapters read, shipped in the package (data/results → results/) for Colab.
COMMITTED = ("synface64.json", "synface64.md", "synface64_joint.json", "synface64_joint.md",
             "synface64_joint.depths.pt", "synface64_pretrained_joint.pt", "synface64.depths.pt",
             "timings_gpu.json", *(f"{kind}_synface64{r}.{k}" for kind in ("edit", "chain")
                                   for r in ("", "_joint") for k in ("json", "md", "pt")
                                   if (kind, k) != ("edit", "pt")),
             *(f"chain_synface64{r}.{k}" for r in ("_stages4", "_truth", "_joint_truth")
               for k in ("json", "md")))


def committed(name: str) -> Path:
    """The path of a committed results file that ships with the package.

    >>> committed("synface64.json").name
    'synface64.json'
    """
    if name not in COMMITTED:
        raise ValueError(f"{name!r} is not a results file the package ships (those are "
                         f"{', '.join(COMMITTED)}); read other files by their path")
    path = Path(str(importlib.resources.files("g2s_lite") / "data" / "results" / name))
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing from this installation: reinstall the "
                                "package (pip install g2s-lite @ git+<the repository>) so "
                                "that its data files come with it")
    return path


# ----------------------------------------------------------------------------- the table
@dataclass(frozen=True)
class Table:
    """What the rows of a results file are: ``methods`` in the order the table lists them,
    the ``reference`` row every ratio is taken to, and the ``paper``'s numbers (SIDE ×10⁻²,
    MAD °) whose ratios stand beside ours. The ``pretrained`` rows started from the nets
    ``meta["pretrained"]`` records."""

    methods: tuple[str, ...]
    reference: str
    paper: dict[str, tuple[float, float]]
    pretrained: tuple[str, ...] = ()

    def check(self, methods) -> None:
        """Refuse method names the table does not have."""
        unknown = [m for m in methods if m not in self.methods]
        if unknown:
            raise ValueError(f"unknown method(s) {unknown}; choose from "
                             f"{', '.join(self.methods)}")


def rows(images: dict[str, dict], table: Table, methods=None) -> list[dict]:
    """One row per method of ``methods`` (default: every method some image holds), in the
    table's order, averaged over the images that hold it.

    >>> t = Table(("a", "b"), "a", {})
    >>> images = {"0": {"b": {"side": 1.0, "mad": 10.0, "seconds": 2.0}, "project_seconds": 9},
    ...           "1": {"b": {"side": 3.0, "mad": 20.0, "seconds": 4.0}}}
    >>> rows(images, t)
    [{'method': 'b', 'side': 2.0, 'mad': 15.0, 'n': 2, 'seconds': 3.0}]
    """
    wanted = table.methods if methods is None else methods
    out = []
    for m in (m for m in table.methods if m in wanted):
        done = [r[m] for r in images.values() if m in r]
        if done:
            n = len(done)
            out.append({"method": m, "side": sum(d["side"] for d in done) / n,
                        "mad": sum(d["mad"] for d in done) / n, "n": n,
                        "seconds": sum(d["seconds"] for d in done) / n})
    return out


def commands(meta: dict) -> tuple[list[str], list[str]]:
    """The commands that wrote into a file, oldest first, each once; then those of the
    files merged into it (each once, and none already in the first list)."""
    ran = list(dict.fromkeys([*meta.get("earlier_commands", []), meta["command"]]))
    merged = [c for c in dict.fromkeys(meta.get("merged_from", [])) if c not in ran]
    return ran, merged


def markdown(result: dict, table: Table) -> str:
    """The results as a markdown table, with ratios to the reference row beside the paper's;
    the notes under it, and how the file was made at the end."""
    by_method = {r["method"]: r for r in result["rows"]}
    ref, p_ref = by_method.get(table.reference), table.paper.get(table.reference)
    meta = result["meta"]
    done = len(result["images"]) if "images" in result else meta["n_images"]
    faces = (f"{meta['n_images']} test faces" if done >= meta["n_images"] else
             f"{done} of {meta['n_images']} test faces done; `--resume` continues")
    lines = [f"# SynFace benchmark ({faces}, seed {meta['seed']}, preset {meta['preset']}"
             f"{gan_label(meta)})", "",
             f"SIDE is ×10⁻², MAD in degrees; ratios are to `{table.reference}` (the paper's in "
             "brackets, from its BFM Tables 1 and 2).", "",
             "| method | SIDE | MAD | SIDE ratio (paper) | MAD ratio (paper) | n | s/image |",
             "|---|---|---|---|---|---|---|"]
    for m in (m for m in table.methods if m in by_method):
        r, paper = by_method[m], table.paper.get(m)
        ratio = ("—", "—") if ref is None else (f"{r['side'] / ref['side']:.2f}",
                                                f"{r['mad'] / ref['mad']:.2f}")
        pr = ("", "") if paper is None or p_ref is None else (
            f" ({paper[0] / p_ref[0]:.2f})", f" ({paper[1] / p_ref[1]:.2f})")
        lines.append(f"| {m} | {r['side']:.3f} | {r['mad']:.2f} | {ratio[0]}{pr[0]} | "
                     f"{ratio[1]}{pr[1]} | {r['n']} | {r['seconds']:.1f} |")
    if len({r["n"] for r in by_method.values()}) > 1:
        lines += ["", "Rows with different n average over different faces: compare such rows "
                  "face by face (Chapter 7)."]
    lines += [f"\nDropped and re-run: {', '.join(d['methods'])} ({d['reason']})."
              for d in meta.get("dropped", [])]
    lines += [f"\nRenamed: {r['from']} → {r['to']} (the commands and records made before "
              f"call it {r['from']})." for r in meta.get("renamed", [])]
    lines += [f"\nNote: {text}" for text in meta.get("notes", [])]
    ran, merged = commands(meta)
    lines += ["", "## How this file was made", "",
              f"On {meta['device']}, {meta['wall_seconds'] / 60:.1f} min of wall time in all; "
              f"g2s_lite {meta['version']}, torch {meta.get('torch', '?')}. Run by:", "",
              *[f"- `{c}`" for c in ran]]
    if merged:
        lines += ["", "Merged in (the same test faces and preset, run alongside):", "",
                  *[f"- `{c}`" for c in merged]]
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- resuming
def resume(out: str | Path, meta: dict) -> tuple[dict, dict, dict]:
    """What an interrupted run left in ``out``, for a run described by ``meta`` to go on
    from: ``(images, depths, meta)``, the meta with the file's wall time, its commands
    (as ``earlier_commands``) and its records (:data:`CARRIED_META`) carried over.

    The file must hold the same test faces under the same schedule (:data:`SAME_RUN`)."""
    old, depths = read(out)
    for key in SAME_RUN:
        if old["meta"].get(key) != meta.get(key):
            raise ValueError(f"{out} holds a run with {key} {old['meta'].get(key)!r}, not "
                             f"{meta.get(key)!r}; resume needs the same (or drop --resume to "
                             "start again)")
    meta = {**meta, "wall_seconds": old["meta"]["wall_seconds"],
            "earlier_commands": old["meta"].get("earlier_commands", []) + [old["meta"]["command"]]}
    meta.update({k: old["meta"][k] for k in CARRIED_META if k in old["meta"]})
    return old["images"], depths, meta


# ----------------------------------------------------------------------------- edits
def join(images: dict, depths: dict, more: dict, more_depths: dict) -> dict:
    """``images`` with the entries of ``more`` that it lacks (each with its depth map, added
    to ``depths`` in place), faces in order — the order :func:`rows` averages in, so that
    files joined from shares give the numbers of one run.

    >>> join({"1": {"a": 1}}, {}, {"0": {"a": 2}, "1": {"a": 3, "b": 4}}, {})
    {'0': {'a': 2}, '1': {'a': 1, 'b': 4}}
    """
    for i, record in more.items():
        mine = images.setdefault(i, {})
        for m, v in record.items():
            if m not in mine:
                mine[m] = v
                if m in more_depths.get(i, {}):
                    depths.setdefault(i, {})[m] = more_depths[i][m]
    return dict(sorted(images.items(), key=lambda kv: int(kv[0])))


def merge(out: str | Path, other: str | Path, table: Table,
          markdown_out: str | Path | None = None) -> dict:
    """Join the results file ``other`` into ``out`` (and their depth maps): faces and methods
    that ``out`` lacks are added, entries it already has are kept. Both must be runs over the
    same test faces and preset (:data:`SAME_FACES`), and pretrained rows from the same nets —
    e.g. two shares made with ``--first/--stop``, or other methods run alongside.
    ``other``'s commands (the first and any ``--resume``) are recorded in
    ``meta.merged_from`` once each, and its wall time in ``meta.merged_wall_seconds``, so
    that merging a share again after resuming it adds only the faces and the time that are
    new."""
    (a, da), (b, db) = read(out), read(other)
    for key in SAME_FACES:
        if a["meta"].get(key) != b["meta"].get(key):
            raise ValueError(f"cannot merge {other} into {out}: their {key} differ "
                             f"({b['meta'].get(key)!r} vs {a['meta'].get(key)!r}); only runs "
                             "over the same test faces and preset can be joined")
    nets = [r["meta"].get("pretrained", {}).get("sha256") for r in (a, b)]
    if None not in nets and nets[0] != nets[1]:
        raise ValueError(f"cannot merge {other} into {out}: their pretrained rows started "
                         f"from different nets (sha256 {nets[1]} vs {nets[0]})")
    for key in ("pretrained", *SUPERVISED_META):
        if key in b["meta"]:
            a["meta"].setdefault(key, b["meta"][key])
    a["images"] = join(a["images"], da, b["images"], db)
    a["rows"] = rows(a["images"], table)
    # a resumed share was written by several commands (--resume makes each one differ)
    share = b["meta"].get("earlier_commands", []) + [b["meta"]["command"]]
    merged = a["meta"].setdefault("merged_from", [])
    merged += [c for c in b["meta"].get("merged_from", []) + share if c not in merged]
    # a share merged again after --resume carries its earlier wall time too: count only the
    # rest, keyed by the share's first command (older files keyed it by whichever came last)
    counted = a["meta"].setdefault("merged_wall_seconds", {})
    before = max(counted.pop(c, 0) for c in share)
    a["meta"]["wall_seconds"] += b["meta"]["wall_seconds"] - before
    counted[share[0]] = b["meta"]["wall_seconds"]
    write(a, da, out, markdown_out, table)
    return a


def drop(out: str | Path, methods: list[str], reason: str, table: Table,
         markdown_out: str | Path | None = None) -> dict:
    """Remove ``methods``' results (and depth maps) from ``out``, so that a resumed run or a
    merge fills them again — after a change to the code that made them. ``reason`` is kept
    in ``meta.dropped``; the pretrained nets' record goes with the last row made from them,
    and the supervised bound's training record with the last supervised entry."""
    table.check(methods)
    if not reason:
        raise ValueError("say why the rows are dropped (reason): it is kept in the file")
    result, depths = read(out)
    held = {m for r in result["images"].values() for m in r}
    if not set(methods) & held:
        raise ValueError(f"{out} holds no results of {', '.join(methods)}: nothing to drop")
    for i, record in result["images"].items():
        for m in methods:
            record.pop(m, None)
            depths.get(i, {}).pop(m, None)
    held = {m for r in result["images"].values() for m in r}
    if not set(table.pretrained) & held:
        result["meta"].pop("pretrained", None)  # no row left that was made from those nets
    if "supervised" not in held:
        for key in SUPERVISED_META:  # nor one made by that training
            result["meta"].pop(key, None)
    result["meta"].setdefault("dropped", []).append({"methods": list(methods), "reason": reason})
    result["rows"] = rows(result["images"], table)
    write(result, depths, out, markdown_out, table)
    return result


def rename(out: str | Path, old: str, new: str, table: Table,
           markdown_out: str | Path | None = None) -> dict:
    """Give the row ``old`` of ``out`` the name ``new`` (a method of ``table`` that ``out``
    lacks): its entries, depth maps and average. The commands and notes that call it ``old``
    are kept as they were run and written; ``meta.renamed`` (and the markdown) says so."""
    table.check([new])
    result, depths = read(out)
    held = {m for r in result["images"].values() for m in r} - {"project_seconds"}
    if old not in held:
        raise ValueError(f"{out} holds no row {old!r} to rename")
    if new in held:
        raise ValueError(f"{out} already holds a row {new!r}: drop it, or choose another name")
    for record in (*result["images"].values(), *depths.values()):  # in place, in order
        record.update({new if m == old else m: record.pop(m) for m in list(record)})
    result["meta"].setdefault("renamed", []).append({"from": old, "to": new})
    result["rows"] = rows(result["images"], table)
    write(result, depths, out, markdown_out, table)
    return result


def add_note(out: str | Path, text: str, table: Table | None = None,
             markdown_out: str | Path | None = None, replace: bool = False,
             number: int | None = None) -> dict:
    """Append ``text`` to ``meta.notes`` of ``out`` (shown under the markdown table): what a
    reader must know about how some rows were made. With ``replace`` it becomes the only
    note (when re-run rows have made the earlier notes wrong); with ``number`` it takes the
    place of that note alone (1 is the first), the others kept as they are."""
    if replace and number is not None:
        raise ValueError("give replace or number, not both: one replaces every note, the "
                         "other one of them")
    result, depths = read(out)
    notes = result["meta"].setdefault("notes", [])
    if number is not None:
        if not 1 <= number <= len(notes):
            raise ValueError(f"{out} has {len(notes)} note(s), so there is no note {number} "
                             f"to replace: number them from 1 (or append a new one)")
        notes[number - 1] = text
    else:
        if replace:
            notes.clear()
        notes.append(text)
    write(result, depths, out, markdown_out, table)
    return result


# ----------------------------------------------------------------------------- a run's ledger
@dataclass
class Ledger:
    """What a run has measured so far — ``images`` (as in a results file), the depth maps
    kept (``depths``, as in its sidecar) and the ``meta`` — and the files it keeps them in:
    ``out`` (and its ``markdown_out`` table), or, while the processes of a torchrun run each
    do their share, this process's :func:`part_path` file. Made by :meth:`start`."""

    table: Table
    out: Path | None
    markdown_out: Path | None
    world: World
    meta: dict
    images: dict[str, dict] = field(default_factory=dict)
    depths: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)
    wall0: float = 0.0  # the wall time of the runs this one resumes
    started: float = field(default_factory=time.perf_counter)

    @classmethod
    def start(cls, table: Table, out: str | Path | None, markdown_out: str | Path | None,
              meta: dict, world: World = SOLO, resume_run: bool = False) -> "Ledger":
        """An empty ledger for a run described by ``meta``; with ``resume_run``, what
        ``out`` holds (:func:`resume`) and what the part files of a stopped torchrun run
        hold, whatever the number of processes that wrote them."""
        out = None if out is None else Path(out)
        images, depths = {}, {}
        if resume_run and out is not None:
            if world.main and out.exists():
                images, depths, meta = resume(out, meta)
            if world.size > 1:
                images, depths, meta = world.broadcast((images, depths, meta))
            for share in world.gather([resume(p, meta)[:2] for p in parts(out)]):
                for more, more_depths in share:
                    images = join(images, depths, more, more_depths)
        return cls(table, out, markdown_out, world, meta, images, depths,
                   wall0=meta["wall_seconds"])

    def face(self, i: int) -> dict:
        """The entries of face ``i`` (an empty dict when it has none yet)."""
        return self.images.setdefault(str(i), {})

    def lacks(self, i: int, method: str) -> bool:
        """Whether face ``i`` has no entry for ``method`` yet."""
        return method not in self.images.get(str(i), {})

    def add(self, i: int, method: str, entry: dict, depth: torch.Tensor | None) -> None:
        """``method``'s ``entry`` for face ``i`` (``side``, ``mad``, ``seconds``, …) and its
        depth map as :func:`depths_path` keeps it (None: none kept)."""
        self.face(i)[method] = entry
        if depth is not None:
            self.depths.setdefault(str(i), {})[method] = depth

    def save(self, joined_up: bool = True) -> dict:
        """Write ``out`` (``joined_up``: all the shares are in; rank 0 writes) or this
        process's part file; return the result."""
        self.images = dict(sorted(self.images.items(), key=lambda kv: int(kv[0])))
        self.depths = dict(sorted(self.depths.items(), key=lambda kv: int(kv[0])))
        self.meta["wall_seconds"] = self.wall0 + time.perf_counter() - self.started
        # every row the file holds, not only this run's: a resumed run with other methods
        # adds rows to a results file
        result = {"rows": rows(self.images, self.table), "meta": self.meta,
                  "images": self.images}
        if joined_up and self.world.main:
            write(result, self.depths, self.out, self.markdown_out, self.table)
        elif not joined_up and self.out is not None:
            write(result, self.depths, part_path(self.out, self.world.rank))
        return result

    def finish(self, mine: list[int]) -> dict:
        """Join the processes' shares (``mine``: the faces this one did) into ``out`` and
        remove the part files; every process gets the whole result."""
        for more, more_depths in self.world.gather(
                ({str(i): self.images[str(i)] for i in mine},
                 {str(i): self.depths.get(str(i), {}) for i in mine})):
            self.images = join(self.images, self.depths, more, more_depths)
        result = self.save()
        self.world.barrier()  # the joined file is written before any part file goes
        if self.out is not None:
            for part in parts(self.out):
                remove(part)
        return result


# ----------------------------------------------------------------------------- command line
def load_table(spec: str) -> Table:
    """The :class:`Table` named ``"module:NAME"`` (e.g. ``"g2s_lite.benchmark:TABLE"``)."""
    module, _, name = spec.partition(":")
    try:
        table = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError):
        table = None
    if not isinstance(table, Table):
        raise ValueError(f"--table {spec!r} names no Table; give module:NAME, e.g. "
                         "g2s_lite.benchmark:TABLE")
    return table


def _fail(message: str):
    """Stop a command line with one line that says what to fix (no traceback, no usage)."""
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        _fail(f"{message} (see --help)")


def command_parser(prog: str, description: str) -> argparse.ArgumentParser:
    """A command line's parser whose errors are one line, ``error: …`` on stderr, and exit
    code 2 (no usage, no traceback); ``--help`` shows the defaults."""
    return _Parser(prog=prog, description=description,
                   formatter_class=argparse.ArgumentDefaultsHelpFormatter)


def main(argv: list[str] | None = None) -> int:
    parser = _Parser(prog="python -m g2s_lite.results",
                     description="Edit a benchmark results file: merge a file made alongside, "
                     "drop rows to run again, rename a row, add a note, or write its table.")
    parser.add_argument("--table", default="g2s_lite.benchmark:TABLE", metavar="MODULE:NAME",
                        help="the rows' Table (default: %(default)s)")
    sub = parser.add_subparsers(dest="edit", required=True, parser_class=_Parser)

    def edit(name: str, help: str, run, *arguments: str) -> argparse.ArgumentParser:
        """A subcommand that rewrites OUT (and its --markdown table): ``run(args, table)``."""
        e = sub.add_parser(name, help=help)
        for argument in ("out", *arguments):
            e.add_argument(argument, metavar=argument.upper())
        e.add_argument("--markdown", type=Path, default=None, metavar="FILE.md",
                       help="also rewrite this markdown table")
        e.set_defaults(run=run)
        return e

    edit("merge", "join the results file OTHER into OUT (same test faces, preset)",
         lambda a, t: merge(a.out, a.other, t, a.markdown), "other")
    d = edit("drop", "remove methods' results, for a resumed run to fill again",
             lambda a, t: drop(a.out, a.methods, a.reason, t, a.markdown))
    d.add_argument("methods", nargs="+", metavar="METHOD")
    d.add_argument("--reason", required=True, help="why (kept in the file)")
    edit("rename", "give row OLD the name NEW (a method the file lacks)",
         lambda a, t: rename(a.out, a.old, a.new, t, a.markdown), "old", "new")
    n = edit("note", "add a note shown under the table",
             lambda a, t: add_note(a.out, a.text, t, a.markdown, a.replace, a.number), "text")
    which = n.add_mutually_exclusive_group()
    which.add_argument("--replace", action="store_true", help="TEXT replaces every note")
    which.add_argument("--number", type=int, default=None, metavar="K",
                       help="TEXT replaces note K alone (1 is the first)")
    w = sub.add_parser("markdown", help="print (or --out: write) the markdown table")
    w.add_argument("out", metavar="OUT.json", help="the results file")
    w.add_argument("--out", dest="markdown", type=Path, default=None, metavar="FILE.md")
    w.set_defaults(run=lambda a, t: write(read(a.out)[0], {}, None, a.markdown, t))
    args = parser.parse_args(argv)
    try:
        table = load_table(args.table)
        result = args.run(args, table)
    except (ValueError, FileNotFoundError) as error:  # a file or a share that does not fit
        _fail(str(error))
    print(markdown(result, table))
    return 0


if __name__ == "__main__":
    # run the package's copy of this module: the Table that --table finds was made by it
    # (``python -m`` runs a second copy, as ``__main__``)
    sys.exit(importlib.import_module("g2s_lite.results").main())
