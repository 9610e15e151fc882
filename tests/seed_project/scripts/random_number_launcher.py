from src.data_nodes.example_nodes import DailyRandomNumber, RandomDataNodeConfig


def main():
    daily_node = DailyRandomNumber(config=RandomDataNodeConfig(mean=0.0))
    daily_node.run()


if __name__ == "__main__":
    main()
