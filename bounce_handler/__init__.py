"""bounce_handler: Postfix bounces into facts an administrator can act on.

Kept empty of imports on purpose: ``bounce-handler`` (the pipe entrypoint) imports this
package first, and every millisecond here is paid once per bounce.
"""

__version__ = "0.1.0"
