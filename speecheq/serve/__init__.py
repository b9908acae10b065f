"""``speecheq serve``: a local HTTP and WebSocket server of one model, with a web page."""
