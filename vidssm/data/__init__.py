"""vidssm.data"""
