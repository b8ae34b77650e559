"""Every error this package raises on purpose, in one tree (as httpx keeps its exceptions).

Catch :class:`ChaosMeshError` for "anything chaostoolkit-mesh refused or could not do"; catch a
layer's class for that layer only. Each error's message names the object, field, file or URL
and the reason, so it can be shown to a user as it is. Activities (``chaosmesh_ext.actions``,
``probes``, ``prometheus``) turn these into chaoslib's ``ActivityFailed``; commands print them.

::

    ChaosMeshError
    ├── ArgumentError (ValueError)         an activity's or command's argument (.argument)
    │   └── AdviceError                        istio.breaker_advice — breaker sizing input
    ├── IstioError (ValueError)            istio.errors — an Istio resource or edit argument
    ├── KubeError                          kube — talking to a Kubernetes API
    │   ├── KubeSettingsError (ValueError)     kube.client — no usable client configuration
    │   ├── KubeApiError                       kube.objects — an API call failed
    │   │   ├── NotFound                           404
    │   │   └── Conflict                           409
    │   │       └── ForeignChange                  kube.changes — someone else changed it
    │   └── LedgerError (RuntimeError)         kube.ledger — the change ledger file
    ├── MeshError                          mesh — the embedded mesh
    │   ├── TargetError (RuntimeError)         mesh.target — the experiment's target
    │   ├── ManifestsRefused (ValueError)      mesh.client — bad manifests, nothing changed
    │   ├── MeshNotRunning (RuntimeError)      mesh.client — no ready mesh (says why)
    │   ├── MeshBusy (RuntimeError)            mesh.client — a daemon starts or stops there
    │   ├── MeshStartFailed (RuntimeError)     mesh.client — the daemon did not serve
    │   ├── MeshNotInstalled (RuntimeError)    mesh.client — no `embedded` extra installed
    │   ├── DaemonError (RuntimeError)         mesh.client — the daemon refused or is silent
    │   ├── ManifestError (ValueError)         mesh.manifests — a manifest for `mesh up -f`
    │   ├── TranslationError (ValueError)      mesh.translate.names — Istio -> Envoy
    │   ├── LogCapError (ValueError)           mesh.logs — a log cap setting (names it)
    │   └── EnvoyError (RuntimeError)          mesh.envoy — the Envoy process
    │       └── EnvoyRejected                      Envoy refused a configuration
    ├── LoadError                          load — the fortio-compatible engine
    │   ├── LoadOptionError (ValueError)       load.options — a load option (names it)
    │   ├── LoadTargetError (ConnectionError)  load.engine — the target cannot be reached
    │   ├── KneeError (ArgumentError)          load.knee — a knee-search argument, or no knee
    │   └── RemoteError (RuntimeError)         load.remote — load or stats inside the mesh
    │       └── ProxyUnavailable                   the API's service proxy answered an error
    ├── PrometheusError                    prometheus — settings or a query
    ├── JournalError (ValueError)          journal.loader — a journal that cannot be read
    └── GameDayError                       gameday — plans and schedules
        ├── PlanError (ValueError)             gameday.plan
        └── CronError (ValueError)             gameday.cron

The built-in base beside ``ChaosMeshError`` (``ValueError`` for bad input, ``RuntimeError``,
``ConnectionError``) is kept so code that caught those before still does. Internal signals that
never leave their module (the embedded API's HTTP answers, workload I/O) are not in the tree.
"""

from __future__ import annotations

__all__ = [
    "ArgumentError",
    "ChaosMeshError",
    "GameDayError",
    "KubeError",
    "LoadError",
    "MeshError",
    "PrometheusError",
]


class ChaosMeshError(Exception):
    """Base of every error chaostoolkit-mesh raises on purpose; the message is for users."""


class ArgumentError(ChaosMeshError, ValueError):
    """An argument cannot be used; ``.argument`` names it as the activity spells it (a
    command shows it as its flag), ``.reason`` says why."""

    def __init__(self, argument: str, message: str) -> None:
        super().__init__(f"{argument}: {message}")
        self.argument = argument
        self.reason = message


class KubeError(ChaosMeshError):
    """Reaching or changing objects through a Kubernetes API failed."""


class MeshError(ChaosMeshError):
    """The embedded mesh could not do what was asked."""


class LoadError(ChaosMeshError):
    """A load run could not be set up or run; nothing (or nothing useful) was measured."""


class PrometheusError(ChaosMeshError):
    """A Prometheus setting is wrong, or a query failed or returned nothing usable."""


class GameDayError(ChaosMeshError):
    """A game-day plan or schedule is wrong."""
