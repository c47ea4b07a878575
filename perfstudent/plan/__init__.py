"""Planning: Fisher saliency, the planning problem on a LUT, the knapsack and the strategies."""
