"""Reference implementations of the operations students write in the labs."""
