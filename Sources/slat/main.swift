// slat: the command-line tool over SLATImage. Being written under issue 8.
print("slat: not yet built")
