from src.data_nodes.example_nodes import DailyRandomNumber, RandomDataNodeConfig

from lakenodes import hash_namespace


def test_daily_random_number_smoke():
    with hash_namespace("pytest_daily_random_number_smoke"):
        node = DailyRandomNumber(config=RandomDataNodeConfig(mean=0.0))
        err, df = node.run(debug_mode=True, force_update=True)
    assert err is False
    assert df is not None
