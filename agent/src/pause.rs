//! The pause image that holds an awsvpc task's network namespace, as ECS's
//! and Kubernetes' pause containers do. It is built here, never pulled: a
//! static ELF executable of a few instructions that waits for signals
//! forever (`pause(2)` on x86_64, `ppoll(2)` on aarch64), written into a
//! one-file tar and imported into Docker as [`IMAGE`]. As PID 1 of its
//! namespace it ignores SIGTERM; the agent kills it (SIGKILL) once the
//! task's containers have stopped.

/// The image's name; the tag changes when its contents do.
pub const IMAGE: &str = "berth-agent/pause:1";

/// Machine code of the wait loop for `arch` (Rust's `target_arch` names).
fn code(arch: &str) -> Option<Vec<u8>> {
    match arch {
        // loop: mov eax, 34 (pause); syscall; jmp loop
        "x86_64" => Some(vec![0xb8, 0x22, 0, 0, 0, 0x0f, 0x05, 0xeb, 0xf7]),
        // loop: mov x0..x3, #0; mov x8, #73 (ppoll); svc #0; b loop
        "aarch64" => Some(
            [
                0xd280_0000u32,
                0xd280_0001,
                0xd280_0002,
                0xd280_0003,
                0xd280_0928,
                0xd400_0001,
                0x17ff_fffa,
            ]
            .iter()
            .flat_map(|w| w.to_le_bytes())
            .collect(),
        ),
        _ => None,
    }
}

/// A minimal static ELF64 executable: header, one loadable segment, code.
fn elf(arch: &str) -> Option<Vec<u8>> {
    const BASE: u64 = 0x40_0000;
    const HEADERS: u64 = 64 + 56;
    let code = code(arch)?;
    let machine: u16 = if arch == "x86_64" { 0x3e } else { 0xb7 };
    let size = HEADERS + code.len() as u64;
    let mut f = Vec::with_capacity(size as usize);
    f.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0]);
    f.extend_from_slice(&[0; 8]);
    f.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    f.extend_from_slice(&machine.to_le_bytes());
    f.extend_from_slice(&1u32.to_le_bytes()); // EV_CURRENT
    f.extend_from_slice(&(BASE + HEADERS).to_le_bytes()); // entry
    f.extend_from_slice(&64u64.to_le_bytes()); // program headers
    f.extend_from_slice(&0u64.to_le_bytes()); // no section headers
    f.extend_from_slice(&0u32.to_le_bytes()); // flags
    for half in [64u16, 56, 1, 0, 0, 0] {
        f.extend_from_slice(&half.to_le_bytes());
    }
    f.extend_from_slice(&1u32.to_le_bytes()); // PT_LOAD
    f.extend_from_slice(&5u32.to_le_bytes()); // R + X
    for word in [0, BASE, BASE, size, size, 0x1000u64] {
        f.extend_from_slice(&word.to_le_bytes());
    }
    f.extend_from_slice(&code);
    Some(f)
}

/// A ustar archive holding one executable file.
fn tar(name: &str, content: &[u8]) -> Vec<u8> {
    let mut header = [0u8; 512];
    header[..name.len()].copy_from_slice(name.as_bytes());
    let octal = |field: &mut [u8], value: u64| {
        let text = format!("{value:0width$o}\0", width = field.len() - 1);
        field.copy_from_slice(text.as_bytes());
    };
    octal(&mut header[100..108], 0o755);
    octal(&mut header[108..116], 0);
    octal(&mut header[116..124], 0);
    octal(&mut header[124..136], content.len() as u64);
    octal(&mut header[136..148], 0);
    header[148..156].copy_from_slice(b"        ");
    header[156] = b'0';
    header[257..263].copy_from_slice(b"ustar\0");
    header[263..265].copy_from_slice(b"00");
    let sum: u32 = header.iter().map(|b| u32::from(*b)).sum();
    header[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    let mut out = header.to_vec();
    out.extend_from_slice(content);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out.extend_from_slice(&[0; 1024]);
    out
}

/// The root filesystem of the pause image for this machine, as a tar.
pub fn rootfs() -> Result<Vec<u8>, String> {
    let arch = std::env::consts::ARCH;
    elf(arch)
        .map(|program| tar("pause", &program))
        .ok_or_else(|| format!("awsvpc tasks need a pause program, which Berth has for x86_64 and aarch64, not {arch}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pause_program_is_a_well_formed_static_elf() {
        for arch in ["x86_64", "aarch64"] {
            let f = elf(arch).expect("elf");
            assert_eq!(&f[..4], b"\x7fELF");
            let entry = u64::from_le_bytes(f[24..32].try_into().unwrap());
            assert_eq!(entry, 0x40_0000 + 120);
            let filesz = u64::from_le_bytes(f[64 + 32..64 + 40].try_into().unwrap());
            assert_eq!(filesz, f.len() as u64);
        }
        assert!(elf("riscv64").is_none());
    }

    #[test]
    fn the_tar_has_a_valid_header_checksum_and_padding() {
        let t = tar("pause", b"abc");
        assert_eq!(t.len() % 512, 0);
        assert_eq!(t.len(), 512 + 512 + 1024);
        let stored = u32::from_str_radix(std::str::from_utf8(&t[148..154]).unwrap(), 8).unwrap();
        let mut header = t[..512].to_vec();
        header[148..156].copy_from_slice(b"        ");
        assert_eq!(stored, header.iter().map(|b| u32::from(*b)).sum::<u32>());
        assert_eq!(&t[512..515], b"abc");
    }
}
