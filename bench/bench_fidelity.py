"""Fidelity of plans to their requests, this director side by side with the previous one (git 400cc33), in one
run, on the preview model (SmolLM2-135M on llama.cpp, one shared server), retrieval off for both.

    .venv/bin/python bench/bench_fidelity.py [--limit N] [--old-rev 400cc33] [--json out.json] [--no-old]

64 hand-annotated requests (none of them in the tests): for each, the subjects the shots must show, the
exact cast (or "any cast from one world" when the request names nobody), and a stated shot count or length.
The annotation is the bench's, not the director's: the checks below read only the plans' text.

Per director: share of plans with every subject in some shot's action/location/dialogue, with the exact
cast, with count/length honoured (±20 % for a length), all three at once (goal ≥ 95 %); share of distinct
lines within a plan; median/p90 plan time. Requests run interleaved (new, old, new, old, …) so both see the
same machine load. The old director runs from a `git worktree` of the old commit in its own process.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BBB = ["bunny", "frank", "rinky", "gimera"]
LUCA = ["luca", "alberto", "giulia"]
# (request, subjects, cast (None: any one world), shots, seconds)
REQUESTS: list[tuple[str, list[str], list[str] | None, int | None, float | None]] = [
    ("a funny short where Big Buck Bunny finds a pumpkin in the meadow", ["pumpkin"], ["bunny"], None, None),
    ("Luca discovers a starfish on the beach for the first time", ["starfish", "beach"], ["luca"], None, None),
    ("Frank steals a carrot from the bunny", ["carrot"], ["frank", "bunny"], None, None),
    ("Giulia repairs her bicycle in the piazza, 3 shots", ["bicycle", "piazza"], ["giulia"], 3, None),
    ("Alberto juggles three oranges on the harbour wall", ["orange", "harbour"], ["alberto"], None, None),
    ("the bunny hides from a thunderstorm under the big tree", ["thunderstorm", "tree"], ["bunny"], None, None),
    ("a 25 second short where Rinky drops an acorn into the river", ["acorn", "river"], ["rinky"], None, 25.0),
    ("Gimera eats a giant strawberry", ["strawberry"], ["gimera"], None, None),
    ("Luca and Alberto build a raft on Isola del Mare", ["raft", "Isola del Mare"], ["luca", "alberto"], None, None),
    ("a spooky short where Giulia explores a lighthouse at night", ["lighthouse"], ["giulia"], None, None),
    ("the squirrels steal a pie from the windowsill", ["pie", "windowsill"], ["frank", "rinky"], None, None),
    ("Big Buck Bunny sees a rainbow for the first time", ["rainbow"], ["bunny"], None, None),
    ("two shots: Alberto splashes Luca with a bucket of water", ["bucket"], ["alberto", "luca"], 2, None),
    ("a tense chase where Frank runs after a paper plane", ["plane"], ["frank"], None, None),
    ("Luca paints a picture of the sea", ["picture", "sea"], ["luca"], None, None),
    ("the rabbit plants sunflowers in the garden", ["sunflower", "garden"], ["bunny"], None, None),
    ("Giulia wins a sack race against Alberto", ["sack race"], ["giulia", "alberto"], None, None),
    ("the chinchilla slips on a banana peel", ["banana"], ["gimera"], None, None),
    ("Rinky and Frank fight over a walnut in 5 shots", ["walnut"], ["rinky", "frank"], 5, None),
    ("a short about a lost puppy on the beach", ["puppy", "beach"], None, None, None),
    ("a funny short where a goose chases Big Buck Bunny", ["goose"], ["bunny"], None, None),
    ("Luca catches a fish with his bare hands", ["fish"], ["luca"], None, None),
    ("Alberto fixes an old Vespa in his hideout", ["Vespa", "hideout"], ["alberto"], None, None),
    ("the bunny builds a snowman in the snow, six shots", ["snowman"], ["bunny"], 6, None),
    ("Giulia and Luca watch fireworks from the rooftop", ["firework", "rooftop"], ["giulia", "luca"], None, None),
    ("a 40 second story of Frank learning to fly", [], ["frank"], None, 40.0),
    ("Gimera finds a shiny coin by the pond", ["coin", "pond"], ["gimera"], None, None),
    ("the bullies throw pebbles at the bunny", ["pebble"], ["frank", "rinky", "gimera", "bunny"], None, None),
    ("Luca and Giulia share a gelato on a hot day", ["gelato"], ["luca", "giulia"], None, None),
    ("a drama where Alberto waits alone on the island at sunset", ["island"], ["alberto"], None, None),
    ("Big Buck Bunny blows bubbles for the butterflies", ["bubble", "butterfly"], ["bunny"], None, None),
    ("a quiet short about a fishing boat at dawn", ["boat"], None, None, None),
    ("Rinky hides a hazelnut in the bunny's fur", ["hazelnut"], ["rinky", "bunny"], None, None),
    ("Giulia teaches Alberto to read a map", ["map"], ["giulia", "alberto"], None, None),
    ("the big rabbit smells a rose in the morning", ["rose"], ["bunny"], None, None),
    ("Luca runs away from a crab on the shore", ["crab", "shore"], ["luca"], None, None),
    ("in four shots, Frank sets a trap with a rope", ["trap", "rope"], ["frank"], 4, None),
    ("Alberto and Luca dive for a treasure under the sea", ["treasure", "sea"], ["alberto", "luca"], None, None),
    ("a 15 second gag where Gimera sneezes on a dandelion", ["dandelion"], ["gimera"], None, 15.0),
    ("Giulia rides a Vespa up the hill in the rain", ["Vespa", "hill"], ["giulia"], None, None),
    ("a short where an owl watches the meadow at night", ["owl", "meadow"], None, None, None),
    ("the bunny feeds carrots to a baby bird", ["carrot", "bird"], ["bunny"], None, None),
    ("Luca loses his hat in the wind", ["hat"], ["luca"], None, None),
    ("the rodents ride a skateboard down the path", ["skateboard", "path"], ["frank", "rinky", "gimera"], None,
     None),
    ("Alberto throws a stone across the water, 3 shots", ["stone", "water"], ["alberto"], 3, None),
    ("a romantic short where Giulia gives Alberto a seashell", ["seashell"], ["giulia", "alberto"], None, None),
    ("Big Buck Bunny chases a frog into the pond", ["frog", "pond"], ["bunny"], None, None),
    ("Luca, Alberto and Giulia cook pasta in the kitchen", ["pasta", "kitchen"], ["luca", "alberto", "giulia"],
     None, None),
    ("a one minute short where Frank and the bunny make peace", [], ["frank", "bunny"], None, 60.0),
    ("Rinky discovers a mirror in the grass", ["mirror", "grass"], ["rinky"], None, None),
    ("Giulia finds a kitten in the fog", ["kitten"], ["giulia"], None, None),
    ("the bunny carries a basket of apples across the bridge", ["basket", "apple", "bridge"], ["bunny"], None, None),
    ("Alberto sings to a goat fish in the sea", ["fish", "sea"], ["alberto"], None, None),
    ("a tense short where Gimera guards a cupcake from Frank", ["cupcake"], ["gimera", "frank"], None, None),
    ("Luca counts the stars on the roof in 2 shots", ["star", "roof"], ["luca"], 2, None),
    ("the three rodents steal a picnic basket", ["basket"], ["frank", "rinky", "gimera"], None, None),
    ("Giulia and Alberto race bicycles along the harbour", ["bicycle", "harbour"], ["giulia", "alberto"], None, None),
    ("Big Buck Bunny wakes up to a rooster", ["rooster"], ["bunny"], None, None),
    ("a short of a seagull stealing a sandwich", ["seagull", "sandwich"], None, None, None),
    ("Frank glides over the river and lands in the mud", ["river", "mud"], ["frank"], None, None),
    ("Luca shows Giulia a glowing jellyfish, 20 seconds", ["jellyfish"], ["luca", "giulia"], None, 20.0),
    ("the bunny and Gimera share a pear under the tree", ["pear", "tree"], ["bunny", "gimera"], None, None),
    ("Alberto climbs a tower of crates in the market", ["crate", "market"], ["alberto"], None, None),
    ("a comedy where Rinky gets stuck in a jar", ["jar"], ["rinky"], None, None),
]

WORKER = r'''
import json, sys, time
from studio.agents.director import plan_short
import studio.agents.graph  # imports are process start-up, not planning
try:
    from studio.agents.nlp import pipeline
    pipeline()  # the English pipeline loads once per process
except ImportError:
    pass  # the previous director has none
for raw in sys.stdin:
    req = json.loads(raw)
    t0 = time.perf_counter()
    try:
        plan, report = plan_short(req["request"], seed=req["seed"], search=None, profile="preview")
        out = {"plan": plan.model_dump(mode="json"), "attempts": report.get("attempts", 0)}
    except Exception as e:  # a refused or failed plan counts as not honoured
        out = {"error": f"{type(e).__name__}: {str(e)[:200]}"}
    out["seconds"] = round(time.perf_counter() - t0, 3)
    print(json.dumps(out), flush=True)
'''


def old_tree(rev: str) -> Path:
    """A shim package dir that makes `studio.*` import from a worktree of the old commit."""
    tree = Path(tempfile.gettempdir()) / f"director-{rev}"
    if not tree.exists():
        subprocess.run(["git", "worktree", "add", "-f", "--detach", str(tree), rev], check=True, capture_output=True)
    shim = Path(tempfile.gettempdir()) / f"director-{rev}-pkg"
    pkg = shim / "studio"
    if not pkg.exists():
        pkg.mkdir(parents=True)
        for entry in (tree / "studio").iterdir():
            (pkg / entry.name).symlink_to(entry)
        for sub in ("agents", "configs", "resources", "tasks", "flows", "deployments"):
            if (tree / sub).exists():
                (pkg / sub).symlink_to(tree / sub)
    return shim


def start_worker(pythonpath: str | None, home: str) -> subprocess.Popen:
    env = {**os.environ, "STUDIO_HOME": home}
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    return subprocess.Popen([sys.executable, "-c", WORKER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, env=env, cwd=pythonpath or None)


def ask(worker: subprocess.Popen, request: str, seed: int) -> dict:
    assert worker.stdin and worker.stdout
    worker.stdin.write(json.dumps({"request": request, "seed": seed}) + "\n")
    worker.stdin.flush()
    return json.loads(worker.stdout.readline())


def _mentions(text: str, subject: str) -> bool:
    return all(w.lower().rstrip("s") in text for w in subject.split())


def grade(result: dict, subjects: list[str], cast: list[str] | None, shots: int | None,
          seconds: float | None) -> dict:
    if "plan" not in result:
        return {"subjects": False, "cast": False, "count": False, "all": False, "distinct": 0.0}
    plan = result["plan"]
    text = " ".join(f"{s['action']} {s.get('location', '')} {(s.get('dialogue') or {}).get('line', '')}"
                    for s in plan["shots"]).lower()
    on_screen = {c for s in plan["shots"] for c in s["characters"]}
    cast_ok = on_screen == set(cast) if cast else bool(on_screen) and (on_screen <= set(BBB) or
                                                                        on_screen <= set(LUCA))
    total = sum(s["duration"] for s in plan["shots"])
    count_ok = (shots is None or len(plan["shots"]) == shots) and \
        (seconds is None or abs(total - seconds) <= 0.2 * seconds)
    subj_ok = all(_mentions(text, s) for s in subjects)
    lines = [s["dialogue"]["line"].strip().lower() for s in plan["shots"] if s.get("dialogue")]
    return {"subjects": subj_ok, "cast": cast_ok, "count": count_ok, "all": subj_ok and cast_ok and count_ok,
            "distinct": len(set(lines)) / len(lines) if lines else 1.0, "lines": lines}


def summarise(rows: list[dict]) -> dict:
    ok = [r for r in rows if "error" not in r["result"]]
    times = sorted(r["result"]["seconds"] for r in ok) or [0.0]
    share = {k: round(100 * sum(r["grade"][k] for r in rows) / len(rows), 1)
             for k in ("subjects", "cast", "count", "all")}
    all_lines = [ln for r in rows for ln in r["grade"].get("lines", [])]
    return {"n": len(rows), "planned": len(ok), **{f"{k}_%": v for k, v in share.items()},
            "distinct_lines_in_plan_%": round(100 * statistics.mean(r["grade"]["distinct"] for r in rows), 1),
            "distinct_lines_overall_%": round(100 * len(set(all_lines)) / max(1, len(all_lines)), 1),
            "median_s": round(statistics.median(times), 2), "p90_s": round(times[int(0.9 * (len(times) - 1))], 2)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=int, default=len(REQUESTS))
    ap.add_argument("--old-rev", default="400cc33")
    ap.add_argument("--no-old", action="store_true")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--max-minutes", type=float, default=0, help="stop after this long (0: run every request)")
    args = ap.parse_args()
    from studio.resources.llm.servers import llm_endpoint

    ep = llm_endpoint("preview")
    ep.start()  # one warm server for both directors
    homes = [tempfile.mkdtemp(prefix="bench-fid-new-"), tempfile.mkdtemp(prefix="bench-fid-old-")]
    workers = {"new": start_worker(None, homes[0])}
    if not args.no_old:
        workers["old"] = start_worker(str(old_tree(args.old_rev)), homes[1])
    rows: dict[str, list[dict]] = {k: [] for k in workers}
    try:
        t0 = time.monotonic()
        for i, (request, subjects, cast, shots, seconds) in enumerate(REQUESTS[:args.limit]):
            if args.max_minutes and time.monotonic() - t0 > 60 * args.max_minutes:
                print(f"stopped after {i} requests (--max-minutes {args.max_minutes})", file=sys.stderr)
                break
            for name, w in workers.items():
                result = ask(w, request, seed=i)
                rows[name].append({"request": request, "result": result,
                                   "grade": grade(result, subjects, cast, shots, seconds)})
            print(f"{i + 1:3}/{args.limit} " + "  ".join(
                f"{k}: {'ok ' if r[-1]['grade']['all'] else 'NO '}{r[-1]['result']['seconds']:5.1f}s"
                for k, r in rows.items()), file=sys.stderr, flush=True)
            if args.json:
                args.json.write_text(json.dumps({"rows": rows, "summary": {k: summarise(v) for k, v in rows.items()}},
                                                indent=1))
    finally:
        for w in workers.values():
            w.kill()
    load = os.getloadavg()
    print(json.dumps({"summary": {k: summarise(v) for k, v in rows.items()},
                      "load_avg_1_5_15": [round(x, 2) for x in load], "cpus": os.cpu_count()}, indent=2))


if __name__ == "__main__":
    t0 = time.perf_counter()
    main()
    print(f"wall {time.perf_counter() - t0:.0f} s", file=sys.stderr)
