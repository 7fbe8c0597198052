#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Preflight: `mtlsgw --check` on a demo-like config with a fresh SoftHSM
# token answers one line per check (config, hugepages skipped by no_huge,
# the tap port, the worker CPUs and the HSM threads' CPUs, module, token,
# login, key, certificates)
# and never prints the PIN; a wrong PIN, an expired identity certificate, a
# key URI naming no key and an expired trust anchor are each a `fail` line
# saying which, exit 2; --json is the same results. With a fake sysfs
# (MTLSGW_TEST_SYSFS, test builds) a PCI port on a kernel driver and one on
# vfio-pci without an IOMMU fail. `mtlsgw-ctl setup`: a PCI address that
# does not exist, a NIC carrying the default route (a fake PCI tree whose
# interface is the default route of a namespace made here: refused), the
# already-done cases and the --dry-run commands. Nothing is reserved or
# bound on this machine, and no packet is sent.
. "$(dirname "$0")/../lib/common.sh"

PIN=pf$RANDOM$RANDOM$RANDOM # distinct enough to grep the output for
gw_token gw "$PIN"
"$MTLSGW_CTL" hsm keygen --token gw --pin-file "$T/pin" --label server --type ec-p256 >/dev/null
KEY="pkcs11:token=gw;object=server;type=private"
"$MTLSGW_CTL" pki demo --dir "$T/pki" --key "$KEY" --pin-file "$T/pin" \
	--server-san DNS:gw.test --days 365 >/dev/null
P=$T/pki

# cert FILE DAYS_FROM DAYS_TO [CA]: a self-signed EC certificate valid
# between now+DAYS_FROM and now+DAYS_TO (python3-cryptography: the openssl
# CLI of Debian 12 cannot backdate)
cert() {
	"$GW_PY" - "$@" <<'EOF'
import datetime, sys
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
out, a, b = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
ca = len(sys.argv) > 4
k = ec.generate_private_key(ec.SECP256R1())
n = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "preflight " + out.rsplit("/", 1)[-1])])
now = datetime.datetime.now(datetime.timezone.utc)
c = (x509.CertificateBuilder().subject_name(n).issuer_name(n).public_key(k.public_key())
     .serial_number(x509.random_serial_number())
     .not_valid_before(now + datetime.timedelta(days=a))
     .not_valid_after(now + datetime.timedelta(days=b))
     .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
if ca:
    c = c.add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                        critical=True)
c = c.sign(k, hashes.SHA256())
from cryptography.hazmat.primitives.serialization import Encoding
open(out, "wb").write(c.public_bytes(Encoding.PEM))
EOF
}

# write_config FILE [KEY] [CERT] [PIN_FILE] [ANCHOR] [PORT_DRIVER PORT_DEVICE]
write_config() {
	local f=$1 key=${2:-$KEY} crt=${3:-$P/server.chain.pem} pin=${4:-$T/pin}
	local anchor=${5:-$P/root.pem}
	GW_DRIVER=${6:-tap} GW_DEVICE=${7:-mtlsgw0} gw_gateway_config "$f" "[1]" "  - name: ext
    address: $GW_GW_IP:8443
    service: tls-echo
    tls:
      identity:
        - cert: $crt
          key: \"$key\"
    trust: { mode: ca, certs: [$anchor] }"
	printf 'hsm: { pin_file: %s }\n' "$pin" >>"$f"
}

# check CONFIG [ARGS]: run the preflight; sets OUT and RC
check() {
	local cfg=$1
	shift
	set +e
	OUT=$("$MTLSGW" --check --config "$cfg" "$@" 2>"$T/check.err")
	RC=$?
	set -e
	printf '%s\n' "$OUT" >"$T/check.out"
}
gw_log "$T/check.out" "$T/check.err"
has() { grep -qE -- "$1" "$T/check.out" || gw_fail "no line /$1/ in: $OUT"; }

# ---- a good config ----
write_config "$T/good.yaml"
check "$T/good.yaml"
[ "$RC" = 0 ] || [ "$RC" = 1 ] || gw_fail "good config: exit $RC: $OUT"
has "^ok    config: $T/good.yaml: valid \(1 listener, 1 port, 1 worker\)$"
has '^ok    hugepages: not needed \(dataplane.no_huge: true'
has '^ok    port wan: tap mtlsgw0'
if [ -z "$(cat /sys/devices/system/cpu/isolated 2>/dev/null)" ]; then
	has '^warn  cpus: worker CPU [0-9]+ not isolated from the scheduler.*isolcpus='
	[ "$RC" = 1 ] || gw_fail "a warning must exit 1, got $RC"
fi
# CPUs 0 and 1 are ours: worker lcore 1 runs on CPU 1, the HSM threads start on 0
cpus01=$($GW_PY -c 'import os; print(sorted(os.sched_getaffinity(0))[:2] == [0, 1])')
if [ "$cpus01" = True ]; then
	has '^ok    hsm cpus: 16 HSM thread\(s\) on CPU\(s\) 0(,[0-9,-]+)? \(those no worker runs on\)$'
fi
has '^ok    hsm module: .*libsofthsm2.so loads$'
has "^ok    hsm token 'gw': present"
has "^ok    hsm login 'gw': the PIN from file $T/pin logs in$"
has "^ok    key listener 'ext' identity\[0\]: pkcs11:token=gw;object=server;type=private signs, and matches $P/server.chain.pem$"
has "^ok    cert $P/server.chain.pem: identity \(first to expire of its chain\) .* (36[45]) days left$"
has "^ok    cert $P/root.pem: trust anchor '/.*CN=.*root CA' expires on .*days left$"
! grep -vE '^(ok|warn|fail)  ' "$T/check.out" || gw_fail "a line not in the ok|warn|fail form"
! grep -qF -- "$PIN" "$T/check.out" "$T/check.err" || gw_fail "the PIN was printed"
gw_ok "--check on a good config: $(wc -l <"$T/check.out") lines, exit $RC, no PIN shown"

# --json: the same results, as {check, status, detail}
cp "$T/check.out" "$T/text.out"
check "$T/good.yaml" --json
"$GW_PY" - "$T/check.out" "$T/text.out" <<'EOF' || gw_fail "--json does not match the lines: $OUT"
import json, re, sys
rows = json.load(open(sys.argv[1]))
# the two runs may fall either side of a certificate's day boundary
days = lambda l: re.sub(r"\d+ days? left", "N days left", l)
text = [days(l) for l in open(sys.argv[2]).read().splitlines()]
assert [set(r) for r in rows] == [{"check", "status", "detail"}] * len(rows), rows
assert [days("%-4s  %s: %s" % (r["status"], r["check"], r["detail"])) for r in rows] == text, (rows, text)
EOF
gw_ok "--json: an array of {check, status, detail}, the same results as the lines"

# ---- hsm.cpus: as a start would place the HSM threads ----
# hsm_cpus_config FILE LIST: the good config with hsm.cpus LIST
hsm_cpus_config() {
	write_config "$1"
	sed -i "s/^hsm: { pin_file: \(.*\) }\$/hsm: { pin_file: \1, cpus: $2 }/" "$1"
	grep -qF "cpus: $2" "$1" || gw_fail "no hsm.cpus in $1"
}
hsm_cpus_config "$T/hcpu.yaml" "[1023]"
check "$T/hcpu.yaml"
[ "$RC" = 2 ] || gw_fail "hsm.cpus [1023]: exit $RC, want 2: $OUT"
has '^fail  hsm cpus: hsm.cpus\[0\]: CPU 1023 is not one this process may run on \([0-9,-]+\)$'
if [ "$cpus01" = True ]; then
	hsm_cpus_config "$T/hcpu.yaml" "[0, 1]"
	check "$T/hcpu.yaml"
	has '^warn  hsm cpus: hsm.cpus 0-1: worker lcores also run on 1, and take turns with the HSM threads there'
	hsm_cpus_config "$T/hcpu.yaml" "[0]"
	check "$T/hcpu.yaml"
	has '^ok    hsm cpus: 16 HSM thread\(s\) on CPU\(s\) 0 \(hsm.cpus\)$'
fi
if [ "$(nproc)" = 2 ] && [ "$cpus01" = True ]; then
	# workers 1 and 2 on CPUs 1 and 0: none left for the HSM threads
	write_config "$T/hcpu.yaml"
	sed -i 's/^  workers: \[1\]$/  workers: [1, 2]/' "$T/hcpu.yaml"
	grep -qF "workers: [1, 2]" "$T/hcpu.yaml" || gw_fail "no workers [1, 2] in $T/hcpu.yaml"
	check "$T/hcpu.yaml"
	has '^warn  hsm cpus: every CPU this process may use runs a worker lcore: the 16 HSM threads take turns'
fi
gw_ok "hsm cpus: a CPU not the process's fails (exit 2), one a worker runs on warns, as do workers on every CPU"

# ---- a wrong PIN: the token is named, exit 2 ----
printf '999999\n' >"$T/badpin" && chmod 600 "$T/badpin"
write_config "$T/badpin.yaml" "$KEY" "$P/server.chain.pem" "$T/badpin"
check "$T/badpin.yaml"
[ "$RC" = 2 ] || gw_fail "wrong PIN: exit $RC, want 2: $OUT"
has "^ok    hsm token 'gw': present"
has "^fail  hsm login 'gw': PIN rejected by token 'gw'.*\(PIN from file $T/badpin\)$"
has "^fail  key listener 'ext' identity\[0\]: .*not checked, its token cannot be used"
! grep -qF 999999 "$T/check.out" "$T/check.err" || gw_fail "the wrong PIN was printed"
gw_ok "wrong PIN: fail naming token 'gw', exit 2"

# ---- a key URI that names no key ----
write_config "$T/nokey.yaml" "pkcs11:token=gw;object=nosuch;type=private"
check "$T/nokey.yaml"
[ "$RC" = 2 ] || gw_fail "missing key: exit $RC, want 2: $OUT"
has "^ok    hsm login 'gw'"
has "^fail  key listener 'ext' identity\[0\]: .*nosuch.*\(certificate $P/server.chain.pem\)$"
gw_ok "a key URI naming no key: fail, exit 2"

# ---- an expired identity certificate: its path, exit 2 ----
cert "$T/expired.pem" -40 -5
write_config "$T/expired.yaml" "$KEY" "$T/expired.pem"
check "$T/expired.yaml"
[ "$RC" = 2 ] || gw_fail "expired identity: exit $RC, want 2: $OUT"
has "^fail  config: $T/expired.yaml:[0-9]+: listeners\[0\]\.tls\.identity\[0\]\.cert: $T/expired.pem: the certificate expired on "
gw_ok "an expired identity certificate: fail with its path, exit 2"

# ---- trust anchors: expired is a fail, under 30 days a warning ----
cert "$T/old-ca.pem" -40 -1 ca
write_config "$T/oldca.yaml" "$KEY" "$P/server.chain.pem" "$T/pin" "$T/old-ca.pem"
check "$T/oldca.yaml"
[ "$RC" = 2 ] || gw_fail "expired anchor: exit $RC, want 2: $OUT"
has "^fail  cert $T/old-ca.pem: trust anchor '/CN=preflight old-ca.pem' expired on "
cert "$T/soon-ca.pem" -1 10 ca
write_config "$T/soonca.yaml" "$KEY" "$P/server.chain.pem" "$T/pin" "$T/soon-ca.pem"
check "$T/soonca.yaml"
[ "$RC" = 1 ] || gw_fail "anchor expiring soon: exit $RC, want 1: $OUT"
has "^warn  cert $T/soon-ca.pem: trust anchor '/CN=preflight soon-ca.pem' expires on .*: (9|10) days left$"
gw_ok "trust anchors: expired fails (exit 2), 10 days left warns (exit 1)"

# ---- PCI ports and hugepages through a fake sysfs (test builds only) ----
S=$T/sys
mkfake() { # mkfake ADDR DRIVER [NETDEV]: a PCI device in the fake tree
	mkdir -p "$S/bus/pci/devices/$1" "$S/bus/pci/drivers/$2"
	ln -sfn "../../../bus/pci/drivers/$2" "$S/bus/pci/devices/$1/driver"
	echo 0 >"$S/bus/pci/devices/$1/numa_node"
	[ -z "${3:-}" ] || mkdir -p "$S/bus/pci/devices/$1/virtio7/net/$3"
}
mkdir -p "$S/kernel/mm/hugepages/hugepages-2048kB" "$S/kernel/iommu_groups" \
	"$S/devices/system/node/node0/hugepages/hugepages-2048kB" "$S/devices/system/cpu"
echo 0 >"$S/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages"
echo 0 >"$S/kernel/mm/hugepages/hugepages-2048kB/free_hugepages"
echo 0 >"$S/devices/system/node/node0/hugepages/hugepages-2048kB/nr_hugepages"
echo 1 >"$S/devices/system/cpu/isolated"
echo 1 >"$S/devices/system/cpu/nohz_full"
mkfake 0000:00:09.0 virtio-pci gwfake0
mkfake 0000:00:0a.0 vfio-pci
write_config "$T/pci.yaml" "$KEY" "$P/server.chain.pem" "$T/pin" "$P/root.pem" pci 00:09.0
MTLSGW_TEST_SYSFS=$S check "$T/pci.yaml"
if grep -q '^ok    cpus: worker CPUs 1 isolated and nohz_full' "$T/check.out"; then
	[ "$RC" = 2 ] || gw_fail "pci on virtio-pci: exit $RC, want 2: $OUT"
	has '^fail  port wan: PCI 0000:00:09.0 is bound to the kernel driver virtio-pci, not vfio-pci: mtlsgw-ctl setup nic 0000:00:09.0$'
	write_config "$T/pci.yaml" "$KEY" "$P/server.chain.pem" "$T/pin" "$P/root.pem" pci 0000:00:0A.0
	MTLSGW_TEST_SYSFS=$S check "$T/pci.yaml"
	has '^ok    port wan: PCI 0000:00:0a.0 bound to vfio-pci \(NUMA node 0\)$'
	has '^fail  iommu: off \(no IOMMU groups\)'
	mkdir -p "$S/kernel/iommu_groups/3"
	MTLSGW_TEST_SYSFS=$S check "$T/pci.yaml"
	has '^ok    iommu: on \(1 IOMMU groups\)'
	# hugepages: none reserved, then enough
	sed -i 's/no_huge: true/no_huge: false/' "$T/pci.yaml"
	MTLSGW_TEST_SYSFS=$S check "$T/pci.yaml"
	has '^fail  hugepages: none reserved; dataplane.memory_mb is 384: mtlsgw-ctl setup hugepages --mb 384$'
	echo 256 >"$S/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages"
	echo 256 >"$S/kernel/mm/hugepages/hugepages-2048kB/free_hugepages"
	echo 256 >"$S/devices/system/node/node0/hugepages/hugepages-2048kB/nr_hugepages"
	MTLSGW_TEST_SYSFS=$S check "$T/pci.yaml"
	has '^ok    hugepages: 512 MB reserved, 512 MB free \(256 x 2048kB \(256 free\); node 0: 512 MB\); dataplane.memory_mb needs 384$'
	gw_ok "fake sysfs: a PCI port on a kernel driver fails, vfio-pci needs the IOMMU, hugepages counted per node"
else
	gw_ok "skipped the fake-sysfs --check cases: not a -Dtest_hooks=true build"
fi

# ---- mtlsgw-ctl setup ----
gw_expect_fail "no PCI device 0000:ff:1f.7 on this box" "$MTLSGW_CTL" setup nic 0000:ff:1f.7
gw_expect_fail "'eth0' is not a PCI address" "$MTLSGW_CTL" setup nic eth0
gw_expect_fail "--driver 'e1000e': give vfio-pci" "$MTLSGW_CTL" setup nic 00:09.0 --driver e1000e
OUT=$("$MTLSGW_CTL" setup nic 0000:00:0a.0 --sysfs-root "$S")
[ "$OUT" = "nic: 0000:00:0a.0 is bound to vfio-pci already: nothing to do" ] || gw_fail "already bound: $OUT"
gw_ok "setup nic: already bound says so, exit 0"
OUT=$("$MTLSGW_CTL" setup nic 00:09.0 --sysfs-root "$S" --dry-run 2>/dev/null)
case "$OUT" in
*"dpdk-devbind.py --bind=vfio-pci 0000:00:09.0"*) ;;
*) gw_fail "setup nic --dry-run: $OUT" ;;
esac
OUT=$("$MTLSGW_CTL" setup nic 00:09.0 --driver uio_pci_generic --sysfs-root "$S" --dry-run)
[ "$OUT" = "modprobe uio_pci_generic
dpdk-devbind.py --bind=uio_pci_generic 0000:00:09.0" ] || gw_fail "setup nic --driver --dry-run: $OUT"
gw_ok "setup nic --dry-run prints the modprobe (driver not loaded) and dpdk-devbind.py commands"
# the same device's interface carrying the default route (in our own
# namespace: a veth pair, no packet sent) is refused, also in --dry-run
gw_netns
gw_in ip link add gwfake0 type veth peer name gwfake1
gw_in ip addr add 10.98.0.1/24 dev gwfake0
gw_in ip link set gwfake0 up && gw_in ip link set gwfake1 up
gw_in ip route add default via 10.98.0.2 dev gwfake0
gw_expect_fail "refused: 0000:00:09.0 is interface gwfake0, which carries this box's default route" \
	gw_in "$MTLSGW_CTL" setup nic 0000:00:09.0 --sysfs-root "$S" --dry-run
gw_in ip route del default
gw_in "$MTLSGW_CTL" setup nic 0000:00:09.0 --sysfs-root "$S" --dry-run >/dev/null 2>&1 ||
	gw_fail "refused without a default route on gwfake0"
if gw_in ip -6 addr add fd00:98::1/64 dev gwfake0 nodad 2>/dev/null &&
	gw_in ip -6 route add default via fd00:98::2 dev gwfake0 2>/dev/null; then
	gw_expect_fail "is interface gwfake0, which carries this box's default route" \
		gw_in "$MTLSGW_CTL" setup nic 0000:00:09.0 --sysfs-root "$S" --dry-run
else
	gw_ok "skipped the IPv6 default route case: no IPv6 in the namespace"
fi

# hugepages: the command, the already-done case, bad sizes
OUT=$("$MTLSGW_CTL" setup hugepages --mb 1024 --sysfs-root "$S" --dry-run)
[ "$OUT" = "dpdk-hugepages.py --pagesize 2M --reserve 1024M --mount" ] || gw_fail "hugepages --dry-run: $OUT"
OUT=$("$MTLSGW_CTL" setup hugepages --mb 1024 --node 0 --sysfs-root "$S" --dry-run)
[ "$OUT" = "dpdk-hugepages.py --pagesize 2M --node 0 --reserve 1024M --mount" ] || gw_fail "hugepages --node --dry-run: $OUT"
gw_ok "setup hugepages --dry-run prints the dpdk-hugepages.py command"
if grep -q ' hugetlbfs ' /proc/mounts; then
	OUT=$("$MTLSGW_CTL" setup hugepages --mb 512 --sysfs-root "$S" --dry-run)
	case "$OUT" in *"512 MB of 2M pages reserved already and hugetlbfs mounted: nothing to do"*) ;;
	*) gw_fail "hugepages already there: $OUT" ;; esac
	gw_ok "setup hugepages: already reserved says so"
fi
gw_expect_fail "no NUMA node 3" "$MTLSGW_CTL" setup hugepages --mb 64 --node 3 --sysfs-root "$S"
gw_expect_fail "--mb 3 is not a whole number of 2M pages" "$MTLSGW_CTL" setup hugepages --mb 3
gw_expect_fail "--mb 'lots' is not a size in MB" "$MTLSGW_CTL" setup hugepages --mb lots
gw_done
