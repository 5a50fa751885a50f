"""Plan validity and latency over 50 varied requests with the active profile's LLM (preview: SmolLM2-135M on
llama.cpp, 1 thread), through the real path: retrieval from the knowledge base, forced `submit_plan` with the
registry schema, pydantic validation, repair loop.

    .venv/bin/python bench/bench_plans.py [--limit N] [--json out.json]

Reports: valid plans / requests (goal 100 %), median and p90 latency per plan, repairs needed, and the metric
judge's plan score (cast, place, shot count, length, variety) as a rough quality signal.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time

REQUESTS = [
    "a funny short of Luca seeing the sea for the first time",
    "Luca and Alberto race a Vespa down the hill in Portorosso at sunset in 5 shots",
    "Giulia teaches Luca about the stars on a rooftop at night",
    "Alberto shows off by jumping from a cliff on Isola del Mare",
    "a 30 second short where the bunny takes revenge on Frank",
    "Big Buck Bunny wakes up at dawn and smells a flower",
    "Rinky and Gimera steal apples in the meadow",
    "Frank glides from the big tree and lands on the bunny's head",
    "a sad short where Giulia says goodbye to Luca at the train station",
    "the three bullies laugh at the bunny in 3 shots",
    "Luca hides from the rain because he turns into a sea monster",
    "a spooky night in the forest with Gimera",
    "Alberto and Giulia argue about pasta in 4 shots",
    "an adventure of the bunny crossing the river on flat stones",
    "Luca and Giulia ride a bike through the piazza",
    "Frank and Rinky plan a prank from a branch",
    "a 20 second comedy where Gimera laughs too late",
    "the bunny sets a trap with vines and sticks along the forest path",
    "Luca meets a cat in an alley of Portorosso",
    "Alberto says Silenzio Bruno before a big jump",
    "a short with footage from the film where the bunny plays with a butterfly",
    "a romantic sunset on the harbour with Giulia and Alberto",
    "Luca reads a book about the stars in 2 shots",
    "a chase through the meadow: the bunny runs after Frank",
    "Rinky drops his acorn and cries",
    "Giulia trains for the Portorosso Cup in 6 shots",
    "the bunny yawns and stretches outside his burrow in the morning",
    "Luca, Alberto and Giulia eat gelato on the quay",
    "a one minute short where Frank ends up as a kite",
    "Gimera tries to climb the big tree and fails",
    "Alberto builds a home-made Vespa in his tower",
    "Luca swims underwater with goat-fish",
    "a funny parody of an action movie starring the bunny",
    "the bullies throw nuts and the bunny catches them all",
    "Giulia rides her bike too fast and crashes into a fountain",
    "a quiet moment: Luca watches the boats in the harbour",
    "Frank brags to Rinky and Gimera about flying",
    "a 15 second short of the bunny sneezing",
    "Alberto teaches Luca to ride a Vespa in 3 shots",
    "the bunny and a butterfly dance in the sun",
    "a storm hits Portorosso and Giulia helps the fishermen",
    "Rinky and Frank hide behind a rock and giggle",
    "Luca discovers a Vespa poster for the first time",
    "Gimera eats too much fruit and falls asleep",
    "a determined bunny builds a catapult",
    "Giulia and Luca look at the Milky Way",
    "Alberto loses a race against Giulia and sulks",
    "the bunny gives Frank a second chance",
    "a short about the harbour at dawn",
    "a surprise birthday party for Luca in 4 shots",
]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=int, default=len(REQUESTS))
    ap.add_argument("--json", default=None)
    args = ap.parse_args()

    from studio.agents.director import default_search, plan_short
    from studio.agents.judge import score_plan
    from studio.agents.schema import PlanRegistry, validate_plan
    from studio.resources.llm.servers import ensure_llm_server, llm_endpoint

    registry = PlanRegistry.from_configs()
    was_running = getattr(llm_endpoint(), "managed", False) and llm_endpoint().status().healthy
    t0 = time.perf_counter()
    endpoint = ensure_llm_server()
    server_s = time.perf_counter() - t0
    search = default_search()  # indexes the pack once (embeds only changes)

    rows = []
    for i, req in enumerate(REQUESTS[: args.limit]):
        t = time.perf_counter()
        row = {"request": req, "seed": i}
        try:
            plan, report = plan_short(req, seed=i, search=search, registry=registry)
            validate_plan(plan, registry)
            ok_names = all(c in registry.character_ids for s in plan.shots for c in s.characters) and all(
                e in registry.effect_names for s in plan.shots for e in s.effects)
            row.update(valid=ok_names, shots=len(plan.shots), repairs=report["attempts"],
                       plan_score=score_plan(plan, req, registry).score, title=plan.title,
                       first_action=plan.shots[0].action)
        except Exception as e:  # noqa: BLE001 - the benchmark counts every failure
            row.update(valid=False, error=f"{type(e).__name__}: {str(e)[:200]}")
        row["seconds"] = round(time.perf_counter() - t, 2)
        rows.append(row)
        print(json.dumps(row, ensure_ascii=False), flush=True)
    lat = sorted(r["seconds"] for r in rows)
    valid = [r for r in rows if r["valid"]]
    summary = {
        "model": endpoint.model_id, "requests": len(rows), "valid": len(valid),
        "valid_pct": round(100 * len(valid) / len(rows), 1), "median_s": statistics.median(lat),
        "p90_s": lat[math.ceil(0.9 * len(lat)) - 1],  # nearest rank
        "server_ready_s": round(server_s, 1),
        "plans_needing_repair": sum(1 for r in valid if r["repairs"]),
        "mean_plan_score": round(statistics.mean(r["plan_score"] for r in valid), 3) if valid else None,
        "mean_shots": round(statistics.mean(r["shots"] for r in valid), 2) if valid else None,
    }
    print(json.dumps(summary, indent=2))
    if getattr(endpoint, "managed", False) and not was_running:
        endpoint.stop()  # leave the machine as we found it
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"summary": summary, "rows": rows}, f, indent=2, ensure_ascii=False)


if __name__ == "__main__":
    main()
