namespace rs echo
struct EchoRequest { 1: required binary payload }
struct EchoResponse { 1: required binary payload }
service EchoService { EchoResponse Echo(1: EchoRequest req) }
