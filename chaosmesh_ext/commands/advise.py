"""``chaosmesh advise breaker``: a DestinationRule circuit breaker sized from capacity.

Prints the DestinationRule as YAML (ready for ``kubectl apply -f -``) with the assumptions
and the reason for every field as comments above it, or everything as JSON with
``--format json``. Capacity is measured (``--from-knee``: the ``capacity_knee`` probe's
output as JSON, or a journal of an experiment that ran it) or declared (``--rps-per-pod`` or
``--concurrency-per-pod`` with ``--service-time``). Exit code 2 on bad input, naming the flag.
"""

from __future__ import annotations

import json
import textwrap

import click
import yaml

from ..breaker_sizing import breaker_inputs, capacity_arguments
from ..istio.breaker_advice import AdviceError, BreakerAdvice, advise


def _flag(argument: str) -> str:
    return "--" + argument.replace("_", "-")


def render_yaml(advice: BreakerAdvice, name: str, namespace: str, host: str) -> str:
    """The DestinationRule as YAML, the reasoning as comments before it."""
    lines = [f"# Circuit breaker for {host}, sized by chaosmesh advise breaker.", "#"]
    lines.append("# Assumptions:")
    for assumption in advice.assumptions:
        wrapped = textwrap.wrap(assumption, 94)
        lines += [f"#   - {wrapped[0]}", *(f"#     {more}" for more in wrapped[1:])]
    lines += ["#", "# Why each field:"]
    for field in advice.fields:
        shown = "(left out)" if field.value is None else field.value
        lines.append(f"#   {field.field}: {shown}")
        lines += [f"#       {part}" for part in textwrap.wrap(field.why, 92)]
    document = advice.destination_rule(name, namespace, host)
    return "\n".join(lines) + "\n" + yaml.safe_dump(document, sort_keys=False)


@click.group("advise")
def command() -> None:
    """Advice from measured or declared capacity."""


@command.command("breaker")
@click.option("--pods", type=int, help="Replicas of the service (from the knee if it says).")
@click.option(
    "--rps-per-pod",
    type=float,
    help="Requests per SECOND one pod serves at its knee (or give --concurrency-per-pod).",
)
@click.option(
    "--concurrency-per-pod",
    type=float,
    help="Requests IN FLIGHT in one pod at its knee (or give --rps-per-pod).",
)
@click.option("--p99-slo", help="Latency SLO, e.g. 200ms (default with --from-knee: its bound).")
@click.option("--service-time", help="Mean latency at the knee, e.g. 50ms (declared capacity).")
@click.option("--knee-p99", help="p99 at the knee, e.g. 120ms, if known (declared capacity).")
@click.option(
    "--from-knee",
    "from_knee",
    metavar="JOURNAL_OR_JSON",
    help="A capacity_knee result as JSON, or a journal of an experiment that measured one.",
)
@click.option("--callers", type=int, default=1, show_default=True, help="Calling pods.")
@click.option("--keepalive/--no-keepalive", default=True, show_default=True)
@click.option("--http2", is_flag=True, help="The callers speak HTTP/2 (or gRPC) to it.")
@click.option(
    "--behind-l4-proxy",
    is_flag=True,
    help="The sidecars reach the pods through one layer-4 proxy address.",
)
@click.option("--can-lose", type=int, help="Pods the service can lose (outlier ejection).")
@click.option("--peak-rps", type=float, help="Expected peak, requests per second, all pods.")
@click.option(
    "--envoy-workers",
    type=int,
    default=2,
    show_default=True,
    help="Worker threads of each caller's sidecar (Istio's proxy concurrency).",
)
@click.option("--pod-cpus", type=float, help="CPU limit of a pod (only for the reasoning).")
@click.option("--host", default="web", show_default=True, help="DestinationRule spec.host.")
@click.option("--name", help="DestinationRule name (default: the host).")
@click.option("-n", "--namespace", default="default", show_default=True)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["yaml", "json"]),
    default="yaml",
    show_default=True,
)
def breaker(
    pods: int | None,
    rps_per_pod: float | None,
    concurrency_per_pod: float | None,
    p99_slo: str | None,
    service_time: str | None,
    knee_p99: str | None,
    from_knee: str | None,
    callers: int,
    keepalive: bool,
    http2: bool,
    behind_l4_proxy: bool,
    can_lose: int | None,
    peak_rps: float | None,
    envoy_workers: int,
    pod_cpus: float | None,
    host: str,
    name: str | None,
    namespace: str,
    output_format: str,
) -> None:
    """Size a DestinationRule's circuit breaker: YAML plus the reason for every field.

    \b
    chaosmesh advise breaker --pods 3 --rps-per-pod 80 --service-time 50ms --p99-slo 200ms
    chaosmesh advise breaker --from-knee journals/breaker-sizing.json --host checkout
    """
    try:
        inputs = breaker_inputs(**capacity_arguments(locals()))
        advice = advise(inputs)
    except AdviceError as exc:
        raise click.BadParameter(exc.reason, param_hint=f"'{_flag(exc.argument)}'") from None
    rule = name or host
    if output_format == "json":
        document = {"destination_rule": advice.destination_rule(rule, namespace, host)}
        click.echo(json.dumps({**document, **advice.to_dict()}, indent=2, ensure_ascii=False))
    else:
        click.echo(render_yaml(advice, rule, namespace, host), nl=False)
