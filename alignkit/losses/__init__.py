from .base import BinaryInput, DemoInput, ListwiseInput, Logps, LossOutput, PairwiseInput

__all__ = ["Logps", "PairwiseInput", "BinaryInput", "ListwiseInput", "DemoInput", "LossOutput"]
