"""The fixed words that catalogues, case files and commands share (no imports: the CLI reads them at start)."""

PROCEDURES = ("pcp", "innovatiepartnerschap", "concurrentiegerichte-dialoog", "mededingingsprocedure-met-onderhandeling",
              "onderhandelingsprocedure-zonder-bekendmaking", "marktconsultatie", "open-of-niet-openbaar", "algemeen")
"""Procedures a template or a practice case is made for."""
PHASES = ("voorbereiding", "plaatsing", "gunning", "uitvoering")
"""Phases of a procurement a template belongs to."""
GOVERNMENT_TYPES = ("gemeente", "stad", "ocmw", "intercommunale", "politiezone", "provincie", "andere")
"""Kinds of local government a practice case comes from."""
