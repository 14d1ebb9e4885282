//! Minimal ELF reader: header, program headers, section headers and virtual-address
//! translation. Hand-parsed with bounds checks everywhere so hostile input yields an error,
//! never a panic; it tolerates zeroed section headers (the build-info fallback needs that).

/// `PT_LOAD`, `PT_DYNAMIC`, `PT_INTERP` program header types.
pub const PT_LOAD: u32 = 1;
pub const PT_DYNAMIC: u32 = 2;
pub const PT_INTERP: u32 = 3;
/// Segment permission flags.
pub const PF_X: u32 = 1;
pub const PF_W: u32 = 2;
/// `e_machine` of x86-64 and AArch64.
pub const EM_X86_64: u16 = 62;
pub const EM_AARCH64: u16 = 183;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ElfError {
    #[error("not an ELF file (no `\\x7fELF` magic)")]
    NotElf,
    #[error("malformed ELF header: {0}")]
    Malformed(String),
}

#[derive(Clone, Debug)]
pub struct Segment {
    pub p_type: u32,
    pub flags: u32,
    pub offset: u64,
    pub vaddr: u64,
    pub filesz: u64,
    pub memsz: u64,
}

#[derive(Clone, Debug)]
pub struct Section {
    pub name: String,
    pub addr: u64,
    pub offset: u64,
    pub size: u64,
    pub sh_type: u32,
}

/// A parsed ELF image borrowing the file bytes.
#[derive(Debug)]
pub struct Elf<'a> {
    pub data: &'a [u8],
    pub is64: bool,
    pub big_endian: bool,
    pub machine: u16,
    pub segments: Vec<Segment>,
    pub sections: Vec<Section>,
    /// File ranges (offset, length) of the header tables: program headers, section headers and
    /// the section-name table. A sparse reader loads these before anything else.
    pub table_ranges: Vec<(u64, u64)>,
}

/// Bounds-checked little/big-endian readers.
#[derive(Clone, Copy)]
pub struct Reader<'a> {
    pub data: &'a [u8],
    pub big_endian: bool,
}

impl<'a> Reader<'a> {
    pub fn bytes(&self, off: u64, len: u64) -> Option<&'a [u8]> {
        let start = usize::try_from(off).ok()?;
        let end = start.checked_add(usize::try_from(len).ok()?)?;
        self.data.get(start..end)
    }
    pub fn u16(&self, off: u64) -> Option<u16> {
        let b: [u8; 2] = self.bytes(off, 2)?.try_into().ok()?;
        Some(if self.big_endian {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        })
    }
    pub fn u32(&self, off: u64) -> Option<u32> {
        let b: [u8; 4] = self.bytes(off, 4)?.try_into().ok()?;
        Some(if self.big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    }
    pub fn u64(&self, off: u64) -> Option<u64> {
        let b: [u8; 8] = self.bytes(off, 8)?.try_into().ok()?;
        Some(if self.big_endian {
            u64::from_be_bytes(b)
        } else {
            u64::from_le_bytes(b)
        })
    }
    /// A pointer-sized word (4 or 8 bytes).
    pub fn word(&self, off: u64, size: u8) -> Option<u64> {
        match size {
            4 => self.u32(off).map(u64::from),
            8 => self.u64(off),
            _ => None,
        }
    }
}

impl<'a> Elf<'a> {
    pub fn parse(data: &'a [u8]) -> Result<Elf<'a>, ElfError> {
        if data.len() < 4 || &data[..4] != b"\x7fELF" {
            return Err(ElfError::NotElf);
        }
        let bad = |what: &str| ElfError::Malformed(what.to_string());
        let class = *data.get(4).ok_or_else(|| bad("truncated identification"))?;
        let is64 = match class {
            1 => false,
            2 => true,
            c => return Err(ElfError::Malformed(format!("unknown class {c}"))),
        };
        let big_endian = match data.get(5) {
            Some(1) => false,
            Some(2) => true,
            _ => return Err(bad("unknown data encoding")),
        };
        let r = Reader { data, big_endian };
        let t = |o: Option<u64>| o.ok_or_else(|| bad("truncated header"));
        let machine = r.u16(18).ok_or_else(|| bad("truncated header"))?;
        let (phoff, shoff, phentsize, phnum, shentsize, shnum, shstrndx) = if is64 {
            (
                t(r.u64(32))?,
                t(r.u64(40))?,
                t(r.u16(54).map(u64::from))?,
                t(r.u16(56).map(u64::from))?,
                t(r.u16(58).map(u64::from))?,
                t(r.u16(60).map(u64::from))?,
                t(r.u16(62).map(u64::from))?,
            )
        } else {
            (
                t(r.u32(28).map(u64::from))?,
                t(r.u32(32).map(u64::from))?,
                t(r.u16(42).map(u64::from))?,
                t(r.u16(44).map(u64::from))?,
                t(r.u16(46).map(u64::from))?,
                t(r.u16(48).map(u64::from))?,
                t(r.u16(50).map(u64::from))?,
            )
        };
        let mut segments = Vec::new();
        let min_ph = if is64 { 56 } else { 32 };
        if phnum > 0 && phentsize < min_ph {
            return Err(bad("program header entries too small"));
        }
        for i in 0..phnum {
            let o = phoff.saturating_add(i * phentsize);
            let seg = if is64 {
                Segment {
                    p_type: t(r.u32(o).map(u64::from))? as u32,
                    flags: t(r.u32(o + 4).map(u64::from))? as u32,
                    offset: t(r.u64(o + 8))?,
                    vaddr: t(r.u64(o + 16))?,
                    filesz: t(r.u64(o + 32))?,
                    memsz: t(r.u64(o + 40))?,
                }
            } else {
                Segment {
                    p_type: t(r.u32(o).map(u64::from))? as u32,
                    offset: t(r.u32(o + 4).map(u64::from))?,
                    vaddr: t(r.u32(o + 8).map(u64::from))?,
                    filesz: t(r.u32(o + 16).map(u64::from))?,
                    memsz: t(r.u32(o + 20).map(u64::from))?,
                    flags: t(r.u32(o + 24).map(u64::from))? as u32,
                }
            };
            segments.push(seg);
        }
        // Section headers are optional (they may be zeroed or stripped): any problem with them
        // leaves the list empty instead of failing, so segment-based fallbacks still run.
        let mut table_ranges = vec![
            (phoff, phnum.saturating_mul(phentsize)),
            (shoff, shnum.saturating_mul(shentsize)),
        ];
        let sections = Self::sections(
            r,
            is64,
            shoff,
            shentsize,
            shnum,
            shstrndx,
            &mut table_ranges,
        )
        .unwrap_or_default();
        Ok(Elf {
            data,
            is64,
            big_endian,
            machine,
            segments,
            sections,
            table_ranges,
        })
    }

    fn sections(
        r: Reader<'_>,
        is64: bool,
        shoff: u64,
        shentsize: u64,
        shnum: u64,
        shstrndx: u64,
        table_ranges: &mut Vec<(u64, u64)>,
    ) -> Option<Vec<Section>> {
        let min = if is64 { 64 } else { 40 };
        if shoff == 0 || shnum == 0 || shentsize < min || shstrndx >= shnum {
            return None;
        }
        let raw = |i: u64| -> Option<(u32, u32, u64, u64, u64)> {
            let o = shoff.checked_add(i.checked_mul(shentsize)?)?;
            if is64 {
                Some((
                    r.u32(o)?,
                    r.u32(o + 4)?,
                    r.u64(o + 16)?,
                    r.u64(o + 24)?,
                    r.u64(o + 32)?,
                ))
            } else {
                Some((
                    r.u32(o)?,
                    r.u32(o + 4)?,
                    u64::from(r.u32(o + 12)?),
                    u64::from(r.u32(o + 16)?),
                    u64::from(r.u32(o + 20)?),
                ))
            }
        };
        let (_, _, _, str_off, str_size) = raw(shstrndx)?;
        table_ranges.push((str_off, str_size));
        let strtab = r.bytes(str_off, str_size)?;
        let mut out = Vec::with_capacity(shnum as usize);
        for i in 0..shnum {
            let (name_off, sh_type, addr, offset, size) = raw(i)?;
            let name = strtab
                .get(name_off as usize..)
                .and_then(|s| s.split(|&b| b == 0).next())
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .unwrap_or_default();
            out.push(Section {
                name,
                addr,
                offset,
                size,
                sh_type,
            });
        }
        Some(out)
    }

    pub fn reader(&self) -> Reader<'a> {
        Reader {
            data: self.data,
            big_endian: self.big_endian,
        }
    }

    pub fn section(&self, name: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.name == name)
    }

    /// The file bytes of a section (`SHT_NOBITS` sections have none).
    pub fn section_data(&self, s: &Section) -> Option<&'a [u8]> {
        if s.sh_type == 8 {
            return None;
        }
        self.reader().bytes(s.offset, s.size)
    }

    /// The file bytes backing a segment.
    pub fn segment_data(&self, s: &Segment) -> Option<&'a [u8]> {
        let len = s
            .filesz
            .min((self.data.len() as u64).saturating_sub(s.offset));
        self.reader().bytes(s.offset, len)
    }

    /// Translate a virtual address to a file offset through the `PT_LOAD` table.
    pub fn vaddr_to_offset(&self, vaddr: u64) -> Option<u64> {
        self.segments
            .iter()
            .filter(|s| s.p_type == PT_LOAD)
            .find(|s| vaddr >= s.vaddr && vaddr - s.vaddr < s.filesz)
            .map(|s| s.offset + (vaddr - s.vaddr))
    }

    /// Dynamically linked when there is an interpreter or a dynamic section.
    pub fn is_dynamic(&self) -> bool {
        self.segments
            .iter()
            .any(|s| s.p_type == PT_INTERP || s.p_type == PT_DYNAMIC)
    }

    /// The program interpreter path, when dynamically linked.
    pub fn interpreter(&self) -> Option<String> {
        let s = self.segments.iter().find(|s| s.p_type == PT_INTERP)?;
        let b = self.reader().bytes(s.offset, s.filesz)?;
        let b = b.split(|&c| c == 0).next()?;
        Some(String::from_utf8_lossy(b).into_owned())
    }

    pub fn arch(&self) -> String {
        match self.machine {
            EM_X86_64 => "amd64".into(),
            EM_AARCH64 => "arm64".into(),
            3 => "386".into(),
            40 => "arm".into(),
            21 => "ppc64".into(),
            22 => "s390x".into(),
            243 => "riscv64".into(),
            m => format!("elf-machine-{m}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_non_elf_and_truncated() {
        assert_eq!(Elf::parse(b"MZ\x90\x00").unwrap_err(), ElfError::NotElf);
        assert!(matches!(
            Elf::parse(b"\x7fELF\x02\x01"),
            Err(ElfError::Malformed(_))
        ));
        assert!(Elf::parse(b"").is_err());
    }
}
