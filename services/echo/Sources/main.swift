import AtomEcho
import AtomRPC

await ServiceMain.run(EchoServiceImpl(), label: "atom-echo")
