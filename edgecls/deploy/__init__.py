"""Getting models and the runtime onto a device: ``edgecls pack`` (host side: pip, and torch when it exports)."""
