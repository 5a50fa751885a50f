"""Planning commands: `studio plan`, `studio knowledge index|search`, `studio llm start|stop|status`.

`studio plan` runs the `plan-short` flow on the studio's Prefect server (started when it is down) and prints
only the validated plan JSON on stdout (pipe it to a file or `jq`); the summary and the run's own link
(`…/runs/flow-run/<id>`) go to stderr. `--local` plans in this process without Prefect (no run, no stored plan).
Errors (unknown character, empty request, server down, no valid plan) exit with code 2 and write nothing.
`studio plan --explain` prints the request's intent and the story's beats instead (no LLM).
"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.text import Text

err = Console(stderr=True)
knowledge_app = typer.Typer(help="The knowledge base the director retrieves from (LanceDB).", no_args_is_help=True)
llm_app = typer.Typer(help="The local LLM server of the active profile (llama.cpp or vLLM).", no_args_is_help=True)


def plan(request: str = typer.Argument(..., help='What the short is about, e.g. "Luca sees the sea".'),
         shots: int = typer.Option(None, "--shots", "-n", min=1, max=24, help="Number of shots (default: from "
                                   "the request, else 4)."),
         seed: int = typer.Option(0, "--seed", "-s", help="Sampling seed (same request + seed → same plan)."),
         report: bool = typer.Option(False, "--report", help="Print {plan, report} instead of the plan alone."),
         no_knowledge: bool = typer.Option(False, "--no-knowledge", help="Plan without retrieval."),
         explain: bool = typer.Option(False, "--explain", help="Print what the director understood of the "
                                      "request (cast, things, places, events, tone, count, length) and the "
                                      "story's beats, without planning."),
         local: bool = typer.Option(False, "--local", help="Plan in this process, without the Prefect server "
                                    "(no flow run, the plan is not stored)."),
         start_server: bool = typer.Option(True, help="Start the local Prefect server when it is down.")) -> None:
    """Plan a short with the director agent (a `plan-short` flow run) and print the validated plan as JSON."""
    from studio.agents.intent import extract_intent
    from studio.agents.registry import PlanRegistry
    from studio.commands.make import check_request, check_seed

    if explain:
        _explain(request, shots, seed)
        return
    request = check_request(request, shots)
    check_seed(seed)
    extract_intent(request, PlanRegistry.from_configs(), shots)  # unknown characters: refused before any server
    if local:
        from studio.agents.director import plan_short

        p_, rep = plan_short(request, shots, seed, search=None if no_knowledge else "default")
        p, run_url = p_.model_dump(mode="json"), None
    else:
        p, rep, run_url = _plan_in_flow(request, shots, seed, not no_knowledge, start_server)
    typer.echo(json.dumps({"plan": p, "report": rep} if report else p, indent=2, ensure_ascii=False))
    err.print(Text.assemble(("valid plan", "green"), f" {p['title']!r}: {len(p['shots'])} shots, "
                            f"{rep.get('attempts', 0)} repair(s), {rep.get('seconds', 0.0):.1f} s with "
                            f"{rep.get('model', '?')}"))
    if run_url:
        err.print(Text(f"run {run_url}"), soft_wrap=True)


def _plan_in_flow(request: str, shots: int | None, seed: int, knowledge: bool, start_server: bool
                  ) -> tuple[dict, dict, str]:
    """The `plan-short` flow run on the studio's server: (plan, report, the run's UI link)."""
    from studio.configs.settings import get_settings
    from studio.flows.plan_short import plan_short
    from studio.resources.runtime.prefect_server import ensure_server

    st = ensure_server(start_server, say=lambda msg: err.print(Text(msg, style="yellow")))
    state = plan_short(request=request, shots=shots, seed=seed, profile=get_settings().profile,
                       knowledge=knowledge, return_state=True)
    run_url = f"{st.ui_url}/runs/flow-run/{state.state_details.flow_run_id}"
    if not state.is_completed():
        err.print(Text(f"the planning run ended {state.name}: its logs are at {run_url}", style="red"),
                  soft_wrap=True)
    result = state.result()  # raises the run's error (the CLI prints it, exit 2)
    return result["plan"], result["report"], run_url


def _explain(request: str, shots: int | None, seed: int) -> None:
    from studio.agents.intent import extract_intent
    from studio.agents.prompts import outline
    from studio.agents.registry import PlanRegistry
    from studio.agents.story import compose_story

    registry = PlanRegistry.from_configs()
    intent = extract_intent(request, registry, shots)
    typer.echo(intent.explain(registry))
    typer.echo("\nbeats:\n" + outline(compose_story(intent, registry, [], seed), registry))


@knowledge_app.command("index")
def knowledge_index(pack: Path = typer.Option(None, "--pack", help="Knowledge pack folder (default: the "
                                              "shipped one or STUDIO_KNOWLEDGE_DIR)."),
                    manifest: list[Path] = typer.Option([], "--manifest", help="A finished short's manifest "
                                                        "to index into past_generations (repeatable).")) -> None:
    """Index the knowledge pack (embeds only changed chunks, deletes removed ones) and manifests."""
    from studio.configs.settings import get_settings
    from studio.resources.knowledge.pack import index_pack, index_past_generation
    from studio.resources.knowledge.store import KnowledgeBase

    kb = KnowledgeBase.from_settings()
    folder = pack or get_settings().knowledge_path
    for c, s in index_pack(kb, folder).items():
        err.print(f"{c:17} embedded {s.embedded:4}  unchanged {s.unchanged:4}  deleted {s.deleted:4}")
    for m in manifest:
        s = index_past_generation(m, kb)
        err.print(f"past_generations  {m}: embedded {s.embedded}, unchanged {s.unchanged}, deleted {s.deleted}")
    err.print(f"knowledge base: {kb.uri}")


@knowledge_app.command("search")
def knowledge_search(query: str = typer.Argument(...),
                     collection: str = typer.Option(None, "--collection", "-c"),
                     character: str = typer.Option(None, "--character"),
                     k: int = typer.Option(5, "-k", min=1, max=50),
                     as_json: bool = typer.Option(False, "--json")) -> None:
    """Search the knowledge base (cosine similarity; filters by collection and character id)."""
    from studio.resources.knowledge.store import KnowledgeBase

    hits = KnowledgeBase.from_settings().search(query, collection, k, {"character": character} if character else None)
    if as_json:
        typer.echo(json.dumps([h.model_dump() for h in hits], indent=2, ensure_ascii=False))
        return
    if not hits:
        err.print("no hits (is the knowledge base indexed? `studio knowledge index`)")
    for h in hits:
        typer.echo(f"{h.score:.3f}  {h.collection:16} {h.id}\n       {h.text[:160]}")


@llm_app.command("start")
def llm_start() -> None:
    """Start the profile's LLM server (PID and log under STUDIO_HOME) and wait until it serves the model."""
    from studio.resources.llm.servers import llm_endpoint

    ep = llm_endpoint()
    if not getattr(ep, "managed", False):
        err.print(f"'{ep.name}' is not managed by the studio ({ep.base_url}); nothing to start")
        return
    st = ep.start()
    err.print(f"{ep.kind} serving '{ep.name}' at {st.url} · pid {st.pid} · log {st.log}")


@llm_app.command("stop")
def llm_stop() -> None:
    """Stop the profile's LLM server."""
    from studio.resources.llm.servers import llm_endpoint

    ep = llm_endpoint()
    stopped = getattr(ep, "managed", False) and ep.stop()
    err.print("stopped" if stopped else "no LLM server of this studio home was running")


@llm_app.command("status")
def llm_status() -> None:
    """Whether the profile's LLM server runs and serves its model."""
    from studio.resources.llm.servers import llm_endpoint

    ep = llm_endpoint()
    if not getattr(ep, "managed", False):
        ok = ep.client().health()
        err.print(f"'{ep.name}' at {ep.base_url}: {'answers' if ok else 'does not answer'} (not managed)")
        raise typer.Exit(0 if ok else 1)
    st = ep.status()
    state = "healthy" if st.healthy else ("starting/unhealthy" if st.running else "down")
    sleeping = "" if st.sleeping is None else f" · {'asleep' if st.sleeping else 'awake'}"
    err.print(f"{ep.kind} '{ep.name}': {state}{sleeping} · pid {st.pid or '-'} · {st.url} · log {st.log}")
    if not st.healthy:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("plan")(plan)
    app.add_typer(knowledge_app, name="knowledge")
    app.add_typer(llm_app, name="llm")
