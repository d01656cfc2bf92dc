"""Network boot of the live image: ``ardoise-collector netboot`` (docs/netboot.md).

image.py extracts and checks the boot files, initrd.py builds the netboot initramfs
addition, ipxe.py writes the boot scripts, seats.py reads the workshop's seat table and
service.py serves it all over HTTP, minting one enrollment token per boot request.
"""
