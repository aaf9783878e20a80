"""Exceptions shared by every stage; importing this module loads nothing else."""


class InputError(ValueError):
    """Bad input or usage: the message names the file, patient, column or option and the fix.

    The command line turns it into exit status 2 without a traceback (contract section 1).
    """
