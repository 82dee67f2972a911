print("auraface: not built yet")
