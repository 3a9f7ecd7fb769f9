// The admin's own behaviour, loaded from a file so the CSP needs no inline script.
