from src.data_nodes.example_nodes import DailyRandomNumber, RandomDataNodeConfig

from lakenodes import hash_namespace


def main():
    with hash_namespace("tutorial_daily_random_number"):
        daily_node = DailyRandomNumber(config=RandomDataNodeConfig(mean=0.0))
        daily_node.run(debug_mode=True, force_update=True)


if __name__ == "__main__":
    main()
