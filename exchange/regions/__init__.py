"""The region directory: Kemendagri region codes an operator loads, to check the codes in
reports against."""
