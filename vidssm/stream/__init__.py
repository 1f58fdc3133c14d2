"""vidssm.stream"""
