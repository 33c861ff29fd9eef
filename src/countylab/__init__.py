"""countylab: 数字县域场景应用实验室."""

__version__ = "0.1.0"
