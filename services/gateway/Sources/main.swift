import AtomGateway

await GatewayMain.run()
