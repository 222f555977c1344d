#!/usr/bin/env python
import matplotlib
import numpy
import pandas

print("Hello, data science!")
