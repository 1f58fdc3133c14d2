"""vidssm.tasks"""
