"""modelaudit"""
