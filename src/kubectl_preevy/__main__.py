from kubectl_preevy.cli import console_main

console_main()
