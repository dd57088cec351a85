import pytest

from tests.node.cluster import Cluster


@pytest.fixture
def make_cluster(tmp_path):
    clusters = []

    def make(n: int = 4, **consensus: int) -> Cluster:
        cluster = Cluster(tmp_path / f"net{len(clusters)}", n, **consensus)
        clusters.append(cluster)
        return cluster
    yield make
    for cluster in clusters:
        cluster.close()
