print("selector-bench: not yet")
