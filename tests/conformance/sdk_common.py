"""Constants shared by the SDK conformance tests."""

PROMPT = "Summarise the history of the printing press for a museum placard."
MESSAGES = [{"role": "user", "content": PROMPT}]
KEY = "sdk-conformance-key-123456"
