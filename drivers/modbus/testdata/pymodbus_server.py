"""A third-party Modbus peer for the driver's tests: pymodbus (Debian's
python3-pymodbus) serving known values, over Modbus TCP or RTU framing over TCP.

usage: pymodbus_server.py PORT tcp|rtu     (Modbus TCP, or RTU framing over TCP)
       pymodbus_server.py DEVICE serial   (RTU on a serial line, 19200 8N1)
Prints "ready" once listening. Values are computed here with Python's struct,
independently of the driver's own encoding.
"""
import struct
import sys

from pymodbus.datastore import ModbusSequentialDataBlock, ModbusServerContext, ModbusSlaveContext
from pymodbus.server import StartSerialServer, StartTcpServer
from pymodbus.transaction import ModbusRtuFramer, ModbusSocketFramer


def words(fmt, value):
    raw = struct.pack(fmt, value)
    return [int.from_bytes(raw[i:i + 2], "big") for i in range(0, len(raw), 2)]


def swap_words(ws):  # ABCD -> CDAB
    out = []
    for i in range(0, len(ws), 2):
        out += [ws[i + 1], ws[i]]
    return out


def swap_bytes(ws):  # ABCD -> BADC
    return [((w & 0xFF) << 8) | (w >> 8) for w in ws]


mode = sys.argv[2]

ir = ModbusSequentialDataBlock(0, [0] * 200)
hr = ModbusSequentialDataBlock(0, [0] * 200)
ir.setValues(0, words(">f", 0.75))                     # nh3_mgm3  FLOAT32 ABCD
ir.setValues(2, swap_words(words(">f", 0.005)))        # h2s_mgm3  FLOAT32 CDAB
ir.setValues(4, words(">h", -52))                      # temp_c    INT16, scale 0.1
ir.setValues(5, words(">H", 655))                      # humidity  UINT16, scale 0.1
hr.setValues(100, swap_words(words(">I", 123456)))     # people_in UINT32 CDAB
hr.setValues(102, words(">d", 12345.5))                # water_l   FLOAT64 ABCD
hr.setValues(110, words(">H", 3))                      # stalls    UINT16
hr.setValues(120, words("<i", 513))                    # fault     INT32 DCBA (little endian)
hr.setValues(130, swap_bytes(words(">I", 44)))         # paper_pct UINT32 BADC
store = ModbusSlaveContext(
    di=ModbusSequentialDataBlock(0, [0] * 100),
    co=ModbusSequentialDataBlock(0, [0] * 100),
    hr=hr, ir=ir, zero_mode=True)
context = ModbusServerContext(slaves={7: store}, single=False)
print("ready", flush=True)
if mode == "serial":
    StartSerialServer(context=context, port=sys.argv[1], framer=ModbusRtuFramer, baudrate=19200,
                      bytesize=8, parity="N", stopbits=1, timeout=0.05)
else:
    framer = ModbusRtuFramer if mode == "rtu" else ModbusSocketFramer
    StartTcpServer(context=context, address=("127.0.0.1", int(sys.argv[1])), framer=framer)
