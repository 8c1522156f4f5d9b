print("echo-load: not yet")
