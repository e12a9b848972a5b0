from .base import (BinaryInput, DemoInput, ListwiseInput, Logps, LossOutput, LossSpec,
                   PairwiseInput)

__all__ = ["Logps", "PairwiseInput", "BinaryInput", "ListwiseInput", "DemoInput", "LossOutput", "LossSpec"]
