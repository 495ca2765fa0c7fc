"""The projections process's metrics endpoint, wired from the settings."""

from __future__ import annotations

from dataclasses import dataclass

from ipt_workflow.composition.builders import build_application
from ipt_workflow.composition.readmodels import ReadModels
from ipt_workflow.composition.settings import Settings
from ipt_workflow.ops.metrics import ScrapeTimeCollector
from ipt_workflow.ops.metrics_server import MetricsServer
from ipt_workflow.ops.supervisor import ProjectionSupervisor


@dataclass
class ProjectionMetrics:
    """The running endpoint and the readers it needs; `close` stops all."""

    server: MetricsServer
    read_models: ReadModels

    def close(self) -> None:
        self.server.close()
        self.read_models.close()
        self.read_models.app.close()


def serve_projection_metrics(
    settings: Settings, supervisor: ProjectionSupervisor, host: str, port: int
) -> ProjectionMetrics:
    """`/metrics` of the runners of this process: running, restarts, position, lag."""
    app = build_application(settings)
    models = ReadModels(settings, app)
    collector = ScrapeTimeCollector(models.status, supervisor.running)
    try:
        server = MetricsServer(host, port, collector).start()
    except BaseException:
        models.close()
        app.close()
        raise
    return ProjectionMetrics(server, models)
