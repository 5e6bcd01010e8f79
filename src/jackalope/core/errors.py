"""Why the core refused an operation.  Front-ends map these onto their protocol's errors
(the AMQP reply code each corresponds to is noted)."""


class CoreError(Exception):
    """Base of the core's refusals; ``str()`` is the reason shown to the client."""


class NotFound(CoreError):  # AMQP 404
    pass


class AccessRefused(CoreError):  # AMQP 403
    pass


class ResourceLocked(CoreError):  # AMQP 405
    pass


class PreconditionFailed(CoreError):  # AMQP 406
    pass


class NotAllowed(CoreError):  # AMQP 530
    pass


class InvalidArgument(CoreError):  # AMQP 406 in RabbitMQ for bad x-arguments
    pass


class Unsupported(CoreError):  # AMQP 540 NOT_IMPLEMENTED (RabbitMQ: a connection error)
    pass
