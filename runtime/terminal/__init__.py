"""What reaches the operator's terminal: outside strings made safe, secrets left out, notices said once.

text (escaping for the terminal and Rich), redact (URL credentials), int8_notices (what to know about an
int8 file), notice_memory (each notice told once per file and user).
"""
