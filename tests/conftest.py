import os

# Quiet TensorFlow's start-up chatter in test logs; it changes nothing that is asserted.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
