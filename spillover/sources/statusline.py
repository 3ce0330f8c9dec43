"""Claude Code statusLine command (design §4.2). STUB."""


def main(argv):
    print("spillover")
    return 0
