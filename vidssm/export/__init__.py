"""vidssm.export"""
