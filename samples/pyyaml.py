#!/usr/bin/env python
import yaml

print(yaml.dump({"hello": "world", "sizes": [1, 2, 3]}), end="")
