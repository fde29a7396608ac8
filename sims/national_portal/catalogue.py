"""The national procedure catalogue (CSDL quốc gia về TTHC) as the DVCQG simulator serves it.

`generate()` invents a deterministic catalogue from a seed: procedure names built from about
forty real-sounding stems ("Đăng ký khai sinh", "Cấp giấy phép xây dựng", ...) and qualifiers
("có yếu tố nước ngoài", "lưu động", ...), sixteen fields (lĩnh vực), two dozen agencies with
valid agency codes, one to three channels each with its processing time and fees (free
procedures and zero fees included), one to eight documents, one to four legal bases. The
records have the upper-case shape of `LayThuTuc` (see PROTOCOL.md). Codes, names and laws are
plausible, not an official catalogue.

`Catalogue` holds what the simulator serves, lets a test change it the way the real catalogue
changes (a procedure added, withdrawn, renamed, its fee revised), and lets it inject a broken
answer for one code (`set_raw`), which is how the portal's bad data reaches the hub.

It belongs to the simulator: stdlib only, never hub code.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

Record = dict[str, Any]
RawReply = str | dict[str, Any]

LEVELS = ("Cấp Bộ", "Cấp Tỉnh", "Cấp Huyện", "Cấp Xã")
CHANNELS = ("1", "2", "3")  # in person, online, postal
TIME_UNITS = ("Ngày làm việc", "Ngày", "Giờ", "Tháng")
MAX_PROCEDURES = 2_000_000  # codes "1.000000" .. "2.999999"

# -- reference data -----------------------------------------------------------------------------


class Agency(NamedTuple):
    code: str
    name: str
    level: str  # CAPDONVI: 1 central, 2 province, 3 district, 4 commune


PROVINCE, DISTRICT, COMMUNE = "000.00.00.H41", "000.00.01.H41", "000.01.01.H41"
AGENCIES: tuple[Agency, ...] = (
    Agency("000.00.00.G02", "Bộ Công an", "1"),
    Agency("000.00.00.G04", "Bộ Công Thương", "1"),
    Agency("000.00.00.G06", "Bộ Kế hoạch và Đầu tư", "1"),
    Agency("000.00.00.G09", "Bộ Tư pháp", "1"),
    Agency("000.00.00.G10", "Bộ Xây dựng", "1"),
    Agency("000.00.00.G11", "Bộ Giáo dục và Đào tạo", "1"),
    Agency("000.00.00.G13", "Bộ Lao động - Thương binh và Xã hội", "1"),
    Agency("000.00.00.G15", "Bộ Tài nguyên và Môi trường", "1"),
    Agency("000.00.00.G18", "Bộ Y tế", "1"),
    Agency("000.00.00.G22", "Bộ Giao thông vận tải", "1"),
    Agency(PROVINCE, "Ủy ban nhân dân tỉnh Nghệ An", "2"),
    Agency("000.20.41.H41", "Sở Tư pháp tỉnh Nghệ An", "2"),
    Agency("000.21.41.H41", "Sở Xây dựng tỉnh Nghệ An", "2"),
    Agency("000.22.41.H41", "Sở Tài nguyên và Môi trường tỉnh Nghệ An", "2"),
    Agency("000.23.41.H41", "Sở Kế hoạch và Đầu tư tỉnh Nghệ An", "2"),
    Agency("000.24.41.H41", "Sở Giao thông vận tải tỉnh Nghệ An", "2"),
    Agency("000.25.41.H41", "Sở Y tế tỉnh Nghệ An", "2"),
    Agency("000.26.41.H41", "Sở Công Thương tỉnh Nghệ An", "2"),
    Agency("000.27.41.H41", "Sở Lao động - Thương binh và Xã hội tỉnh Nghệ An", "2"),
    Agency("000.28.41.H41", "Sở Giáo dục và Đào tạo tỉnh Nghệ An", "2"),
    Agency("000.29.41.H41", "Công an tỉnh Nghệ An", "2"),
    Agency(DISTRICT, "Ủy ban nhân dân thành phố Vinh", "3"),
    Agency(COMMUNE, "Ủy ban nhân dân phường Hưng Bình", "4"),
)
_AGENCY_BY_CODE = {agency.code: agency for agency in AGENCIES}


class Field(NamedTuple):
    code: str
    name: str
    ministry: str  # agency code at Cấp Bộ
    department: str  # agency code at Cấp Tỉnh
    levels: tuple[str, ...]  # where its procedures are carried out
    stems: tuple[tuple[str, str], ...]  # procedure name, result document
    documents: tuple[str, ...]  # the first is the application form
    laws: tuple[tuple[str, str], ...]  # SOVANBAN, TENVANBAN
    fee: str  # what the fee is called


_TINH, _HUYEN, _XA, _BO = "Cấp Tỉnh", "Cấp Huyện", "Cấp Xã", "Cấp Bộ"
FIELDS: tuple[Field, ...] = (
    Field("G09-TP01", "Hộ tịch", "000.00.00.G09", "000.20.41.H41", (_TINH, _HUYEN, _XA),
          (("Đăng ký khai sinh", "Giấy khai sinh"),
           ("Đăng ký kết hôn", "Giấy chứng nhận kết hôn"),
           ("Đăng ký khai tử", "Trích lục khai tử"),
           ("Đăng ký nhận cha, mẹ, con", "Trích lục đăng ký nhận cha, mẹ, con"),
           ("Cấp Giấy xác nhận tình trạng hôn nhân", "Giấy xác nhận tình trạng hôn nhân")),
          ("Tờ khai đăng ký hộ tịch theo mẫu", "Giấy chứng sinh",
           "Giấy tờ chứng minh nơi cư trú", "Văn bản xác nhận của cơ quan có thẩm quyền"),
          (("60/2014/QH13", "Luật Hộ tịch"),
           ("123/2015/NĐ-CP", "Nghị định quy định chi tiết một số điều của Luật Hộ tịch"),
           ("04/2020/TT-BTP", "Thông tư hướng dẫn thi hành Luật Hộ tịch")),
          "Lệ phí hộ tịch"),
    Field("G09-TP02", "Chứng thực", "000.00.00.G09", "000.20.41.H41", (_HUYEN, _XA),
          (("Chứng thực bản sao từ bản chính giấy tờ, văn bản", "Bản sao có chứng thực"),
           ("Chứng thực chữ ký trong các giấy tờ, văn bản",
            "Giấy tờ, văn bản đã được chứng thực chữ ký"),
           ("Chứng thực hợp đồng, giao dịch liên quan đến tài sản là động sản",
            "Hợp đồng, giao dịch đã được chứng thực")),
          ("Bản chính giấy tờ, văn bản", "Bản sao cần chứng thực",
           "Dự thảo hợp đồng, giao dịch"),
          (("23/2015/NĐ-CP", "Nghị định về cấp bản sao từ sổ gốc, chứng thực bản sao"),
           ("01/2020/TT-BTP", "Thông tư hướng dẫn Nghị định 23/2015/NĐ-CP")),
          "Phí chứng thực"),
    Field("G09-TP03", "Lý lịch tư pháp", "000.00.00.G09", "000.20.41.H41", (_TINH,),
          (("Cấp Phiếu lý lịch tư pháp cho công dân Việt Nam", "Phiếu lý lịch tư pháp số 1"),
           ("Cấp Phiếu lý lịch tư pháp cho cơ quan tiến hành tố tụng",
            "Phiếu lý lịch tư pháp số 2")),
          ("Tờ khai yêu cầu cấp Phiếu lý lịch tư pháp", "Văn bản yêu cầu cấp Phiếu",
           "Giấy tờ chứng minh nơi thường trú"),
          (("28/2009/QH12", "Luật Lý lịch tư pháp"),
           ("244/2016/TT-BTC", "Thông tư quy định phí cung cấp thông tin lý lịch tư pháp")),
          "Phí cung cấp thông tin lý lịch tư pháp"),
    Field("G10-XD01", "Hoạt động xây dựng", "000.00.00.G10", "000.21.41.H41", (_TINH, _HUYEN),
          (("Cấp giấy phép xây dựng", "Giấy phép xây dựng"),
           ("Cấp giấy phép xây dựng nhà ở riêng lẻ", "Giấy phép xây dựng"),
           ("Cấp chứng chỉ hành nghề hoạt động xây dựng",
            "Chứng chỉ hành nghề hoạt động xây dựng")),
          ("Đơn đề nghị cấp giấy phép xây dựng", "Bản vẽ thiết kế xây dựng",
           "Giấy tờ chứng minh quyền sử dụng đất", "Bản kê khai kinh nghiệm của tổ chức thiết kế",
           "Văn bản thẩm định thiết kế của cơ quan chuyên môn"),
          (("50/2014/QH13", "Luật Xây dựng"),
           ("62/2020/QH14", "Luật sửa đổi, bổ sung một số điều của Luật Xây dựng"),
           ("15/2021/NĐ-CP", "Nghị định quy định chi tiết về quản lý dự án đầu tư xây dựng")),
          "Lệ phí cấp giấy phép xây dựng"),
    Field("G15-DD01", "Đất đai", "000.00.00.G15", "000.22.41.H41", (_TINH, _HUYEN),
          (("Cấp giấy chứng nhận quyền sử dụng đất",
            "Giấy chứng nhận quyền sử dụng đất, quyền sở hữu tài sản gắn liền với đất"),
           ("Đăng ký biến động quyền sử dụng đất",
            "Giấy chứng nhận đã xác nhận nội dung biến động"),
           ("Chuyển mục đích sử dụng đất", "Quyết định cho phép chuyển mục đích sử dụng đất"),
           ("Tách thửa hoặc hợp thửa đất", "Giấy chứng nhận cho thửa đất mới")),
          ("Đơn đăng ký, cấp Giấy chứng nhận", "Giấy tờ về quyền sử dụng đất",
           "Sơ đồ thửa đất", "Hợp đồng chuyển nhượng quyền sử dụng đất",
           "Chứng từ thực hiện nghĩa vụ tài chính"),
          (("31/2024/QH15", "Luật Đất đai"),
           ("101/2024/NĐ-CP", "Nghị định quy định về điều tra cơ bản đất đai, đăng ký, "
            "cấp Giấy chứng nhận")),
          "Lệ phí cấp Giấy chứng nhận"),
    Field("G15-MT01", "Môi trường", "000.00.00.G15", "000.22.41.H41", (_BO, _TINH),
          (("Cấp giấy phép môi trường", "Giấy phép môi trường"),
           ("Thẩm định báo cáo đánh giá tác động môi trường",
            "Quyết định phê duyệt kết quả thẩm định báo cáo đánh giá tác động môi trường")),
          ("Văn bản đề nghị cấp giấy phép môi trường", "Báo cáo đề xuất cấp giấy phép",
           "Báo cáo đánh giá tác động môi trường"),
          (("72/2020/QH14", "Luật Bảo vệ môi trường"),
           ("08/2022/NĐ-CP", "Nghị định quy định chi tiết Luật Bảo vệ môi trường")),
          "Phí thẩm định"),
    Field("G06-KD01", "Thành lập và hoạt động của doanh nghiệp", "000.00.00.G06",
          "000.23.41.H41", (_TINH,),
          (("Đăng ký thành lập doanh nghiệp tư nhân", "Giấy chứng nhận đăng ký doanh nghiệp"),
           ("Đăng ký thành lập công ty trách nhiệm hữu hạn một thành viên",
            "Giấy chứng nhận đăng ký doanh nghiệp"),
           ("Đăng ký thay đổi nội dung đăng ký doanh nghiệp",
            "Giấy chứng nhận đăng ký doanh nghiệp"),
           ("Thông báo tạm ngừng kinh doanh",
            "Giấy xác nhận về việc doanh nghiệp đăng ký tạm ngừng kinh doanh")),
          ("Giấy đề nghị đăng ký doanh nghiệp", "Điều lệ công ty",
           "Danh sách thành viên", "Bản sao giấy tờ pháp lý của cá nhân"),
          (("59/2020/QH14", "Luật Doanh nghiệp"),
           ("01/2021/NĐ-CP", "Nghị định về đăng ký doanh nghiệp")),
          "Lệ phí đăng ký doanh nghiệp"),
    Field("G06-KD02", "Thành lập và hoạt động của hộ kinh doanh", "000.00.00.G06",
          "000.23.41.H41", (_HUYEN,),
          (("Đăng ký thành lập hộ kinh doanh", "Giấy chứng nhận đăng ký hộ kinh doanh"),
           ("Đăng ký thay đổi nội dung đăng ký hộ kinh doanh",
            "Giấy chứng nhận đăng ký hộ kinh doanh")),
          ("Giấy đề nghị đăng ký hộ kinh doanh", "Bản sao biên bản họp thành viên hộ gia đình",
           "Bản sao hợp đồng thuê địa điểm kinh doanh"),
          (("01/2021/NĐ-CP", "Nghị định về đăng ký doanh nghiệp"),),
          "Lệ phí đăng ký hộ kinh doanh"),
    Field("G22-GT01", "Đường bộ", "000.00.00.G22", "000.24.41.H41", (_BO, _TINH),
          (("Cấp đổi giấy phép lái xe", "Giấy phép lái xe"),
           ("Cấp giấy phép lái xe quốc tế", "Giấy phép lái xe quốc tế"),
           ("Đăng ký xe máy chuyên dùng", "Giấy chứng nhận đăng ký xe máy chuyên dùng")),
          ("Đơn đề nghị đổi, cấp lại giấy phép lái xe", "Giấy khám sức khỏe của người lái xe",
           "Bản sao giấy phép lái xe", "Ảnh màu cỡ 3x4 cm"),
          (("36/2024/QH15", "Luật Trật tự, an toàn giao thông đường bộ"),
           ("35/2024/TT-BGTVT", "Thông tư quy định về đào tạo, sát hạch, cấp giấy phép lái xe")),
          "Lệ phí cấp giấy phép lái xe"),
    Field("G18-YT01", "An toàn thực phẩm", "000.00.00.G18", "000.25.41.H41", (_TINH, _HUYEN),
          (("Cấp Giấy chứng nhận cơ sở đủ điều kiện an toàn thực phẩm",
            "Giấy chứng nhận cơ sở đủ điều kiện an toàn thực phẩm"),
           ("Đăng ký bản công bố sản phẩm", "Giấy tiếp nhận đăng ký bản công bố sản phẩm")),
          ("Đơn đề nghị cấp Giấy chứng nhận", "Bản thuyết minh về cơ sở vật chất",
           "Giấy xác nhận đủ sức khỏe của chủ cơ sở", "Phiếu kết quả kiểm nghiệm sản phẩm"),
          (("55/2010/QH12", "Luật An toàn thực phẩm"),
           ("15/2018/NĐ-CP", "Nghị định quy định chi tiết thi hành Luật An toàn thực phẩm")),
          "Phí thẩm định cơ sở đủ điều kiện an toàn thực phẩm"),
    Field("G18-YT02", "Khám bệnh, chữa bệnh", "000.00.00.G18", "000.25.41.H41", (_BO, _TINH),
          (("Cấp giấy phép hành nghề khám bệnh, chữa bệnh", "Giấy phép hành nghề"),
           ("Cấp giấy phép hoạt động đối với phòng khám đa khoa", "Giấy phép hoạt động")),
          ("Đơn đề nghị cấp giấy phép", "Bản sao văn bằng chuyên môn",
           "Giấy xác nhận quá trình thực hành", "Danh sách người hành nghề"),
          (("15/2023/QH15", "Luật Khám bệnh, chữa bệnh"),
           ("96/2023/NĐ-CP", "Nghị định quy định chi tiết Luật Khám bệnh, chữa bệnh")),
          "Phí thẩm định cấp giấy phép"),
    Field("G04-CT01", "Lưu thông hàng hóa trong nước", "000.00.00.G04", "000.26.41.H41",
          (_TINH, _HUYEN),
          (("Cấp Giấy phép bán lẻ sản phẩm rượu", "Giấy phép bán lẻ sản phẩm rượu"),
           ("Cấp Giấy phép bán buôn sản phẩm thuốc lá", "Giấy phép bán buôn sản phẩm thuốc lá")),
          ("Đơn đề nghị cấp Giấy phép", "Bản sao Giấy chứng nhận đăng ký kinh doanh",
           "Bản sao hợp đồng mua bán với nhà cung cấp"),
          (("105/2017/NĐ-CP", "Nghị định về kinh doanh rượu"),
           ("67/2013/NĐ-CP", "Nghị định quy định chi tiết về kinh doanh thuốc lá")),
          "Phí thẩm định cấp giấy phép kinh doanh"),
    Field("G13-LD01", "Bảo trợ xã hội", "000.00.00.G13", "000.27.41.H41", (_HUYEN, _XA),
          (("Giải quyết trợ cấp xã hội hằng tháng", "Quyết định trợ cấp xã hội hằng tháng"),
           ("Hỗ trợ chi phí mai táng", "Quyết định hỗ trợ chi phí mai táng")),
          ("Tờ khai đề nghị trợ giúp xã hội", "Bản sao Giấy xác nhận khuyết tật",
           "Giấy chứng tử"),
          (("20/2021/NĐ-CP", "Nghị định quy định chính sách trợ giúp xã hội"),),
          ""),
    Field("G13-LD02", "Người có công", "000.00.00.G13", "000.27.41.H41", (_TINH,),
          (("Giải quyết chế độ ưu đãi đối với người có công với cách mạng",
            "Quyết định trợ cấp ưu đãi"),),
          ("Bản khai cá nhân", "Giấy chứng nhận người có công", "Biên bản giám định y khoa"),
          (("02/2020/UBTVQH14", "Pháp lệnh Ưu đãi người có công với cách mạng"),
           ("131/2021/NĐ-CP", "Nghị định quy định chi tiết Pháp lệnh Ưu đãi người có công")),
          ""),
    Field("G11-GD01", "Giáo dục và Đào tạo", "000.00.00.G11", "000.28.41.H41", (_TINH, _HUYEN),
          (("Cấp bản sao văn bằng, chứng chỉ từ sổ gốc", "Bản sao văn bằng, chứng chỉ"),
           ("Chuyển trường đối với học sinh trung học cơ sở", "Giấy giới thiệu chuyển trường")),
          ("Đơn đề nghị", "Học bạ", "Bản sao văn bằng, chứng chỉ"),
          (("43/2019/QH14", "Luật Giáo dục"),),
          "Phí cấp bản sao"),
    Field("G02-CA01", "Đăng ký, quản lý cư trú", "000.00.00.G02", "000.29.41.H41",
          (_HUYEN, _XA),
          (("Đăng ký thường trú", "Thông báo kết quả đăng ký thường trú"),
           ("Đăng ký tạm trú", "Thông báo kết quả đăng ký tạm trú"),
           ("Xác nhận thông tin về cư trú", "Văn bản xác nhận thông tin về cư trú")),
          ("Tờ khai thay đổi thông tin cư trú", "Giấy tờ chứng minh chỗ ở hợp pháp",
           "Văn bản đồng ý cho đăng ký cư trú của chủ hộ"),
          (("68/2020/QH14", "Luật Cư trú"),
           ("154/2024/NĐ-CP", "Nghị định quy định chi tiết một số điều của Luật Cư trú")),
          "Lệ phí đăng ký cư trú"),
)  # fmt: skip

# Qualifiers read after any stem: a situation, then a place or way of submitting.
SITUATIONS = (
    "có yếu tố nước ngoài", "lưu động", "trong trường hợp cấp lại",
    "trong trường hợp điều chỉnh", "trong trường hợp bổ sung thông tin",
    "trong trường hợp gia hạn", "trong trường hợp bị mất, hư hỏng", "cho người nước ngoài",
    "cho người Việt Nam định cư ở nước ngoài", "theo thủ tục rút gọn",
    "theo yêu cầu của cơ quan nhà nước", "liên thông với đăng ký thường trú",
    "liên thông với cấp thẻ bảo hiểm y tế", "đối với dự án đầu tư",
    "tại khu kinh tế, khu công nghiệp", "đối với trường hợp đặc biệt",
)  # fmt: skip
WAYS = (
    "trên môi trường điện tử", "tại Trung tâm Phục vụ hành chính công",
    "qua dịch vụ bưu chính công ích", "đối với tổ chức", "đối với cá nhân",
    "theo cơ chế một cửa liên thông", "đối với trường hợp thực hiện lần đầu",
    "tại vùng biên giới, hải đảo", "đối với hồ sơ đã được số hóa",
    "do cơ quan đại diện thực hiện",
)  # fmt: skip
STEMS: tuple[tuple[Field, str, str], ...] = tuple(
    (f, name, result) for f in FIELDS for name, result in f.stems
)

COMMON_DOCUMENTS = (
    "Bản sao Căn cước công dân hoặc Hộ chiếu",
    "Văn bản ủy quyền (trường hợp ủy quyền)",
    "Ảnh màu cỡ 4x6 cm",
    "Giấy tờ chứng minh thuộc đối tượng được miễn, giảm phí",
    "Bản sao Giấy chứng nhận đăng ký doanh nghiệp",
)
COMMON_LAWS = (
    ("61/2018/NĐ-CP", "Nghị định về thực hiện cơ chế một cửa, một cửa liên thông"),
    ("45/2020/NĐ-CP", "Nghị định về thực hiện thủ tục hành chính trên môi trường điện tử"),
    ("107/2021/NĐ-CP", "Nghị định sửa đổi, bổ sung Nghị định 61/2018/NĐ-CP"),
)
SUBJECTS = (
    "Công dân Việt Nam",
    "Người Việt Nam định cư ở nước ngoài",
    "Người nước ngoài",
    "Doanh nghiệp",
    "Hợp tác xã",
    "Tổ chức (không bao gồm doanh nghiệp, HTX)",
    "Cán bộ, công chức, viên chức",
)
REQUIREMENTS = (
    "Người yêu cầu phải xuất trình giấy tờ tùy thân còn giá trị sử dụng",
    "Hồ sơ phải được nộp trong thời hạn 60 ngày kể từ ngày phát sinh sự việc",
    "Đối tượng có đủ năng lực hành vi dân sự",
    "Cơ sở phải đáp ứng các điều kiện theo quy định của pháp luật chuyên ngành",
)
TIMES: tuple[tuple[str, str], ...] = (
    ("0.5", "Ngày làm việc"), ("1", "Ngày làm việc"), ("3", "Ngày làm việc"),
    ("5", "Ngày làm việc"), ("7", "Ngày làm việc"), ("10", "Ngày làm việc"),
    ("15", "Ngày làm việc"), ("20", "Ngày"), ("30", "Ngày"), ("4", "Giờ"), ("8", "Giờ"),
    ("1", "Tháng"), ("3", "Tháng"),
)  # fmt: skip
FEE_AMOUNTS = (5_000, 10_000, 20_000, 50_000, 100_000, 135_000, 200_000, 500_000, 1_200_000)
CHANNEL_NOTES = {
    "1": "Nộp trực tiếp tại Bộ phận Một cửa",
    "2": "Nộp trực tuyến qua Cổng Dịch vụ công quốc gia",
    "3": "Nộp qua dịch vụ bưu chính công ích",
}
DOWNLOAD_URL = "https://csdl.dichvucong.gov.vn/web/jsp/download_file.jsp?ma="


def field_list() -> list[dict[str, str]]:
    """The fields (lĩnh vực) as `LayDanhMucLinhVuc` lists them."""
    return [{"MALINHVUC": f.code, "TENLINHVUC": f.name} for f in FIELDS]


def agency_list() -> list[dict[str, str]]:
    """The agencies as `LayDanhMucCoQuan` lists them."""
    return [{"MADONVI": a.code, "TENDONVI": a.name, "CAPDONVI": a.level} for a in AGENCIES]


# -- the generator ------------------------------------------------------------------------------


def generate(count: int, seed: int = 1) -> dict[str, Record]:
    """`count` distinct, realistic procedures by code; the same seed gives the same catalogue."""
    if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= MAX_PROCEDURES:
        raise ValueError(f"count must be an integer in 0..{MAX_PROCEDURES}, got {count!r}")
    rng = random.Random(seed)
    numbers = rng.sample(range(MAX_PROCEDURES), count)
    codes = [f"{n // 1_000_000 + 1}.{n % 1_000_000:06d}" for n in numbers]
    names = _names(rng, count)
    return {
        code: _procedure(rng, code, stem, name)
        for code, (stem, name) in zip(codes, names, strict=True)
    }


def _names(rng: random.Random, count: int) -> list[tuple[int, str]]:
    """(stem index, name) for `count` procedures: bare stems first, then one qualifier, then
    two; distinct while the combinations last (over 7,000), repeated after that."""
    stems = range(len(STEMS))
    tiers: list[list[tuple[int, int, int]]] = [
        [(s, -1, -1) for s in stems],
        [(s, a, -1) for s in stems for a in range(len(SITUATIONS))]
        + [(s, -1, w) for s in stems for w in range(len(WAYS))],
        [(s, a, w) for s in stems for a in range(len(SITUATIONS)) for w in range(len(WAYS))],
    ]
    combos: list[tuple[int, int, int]] = []
    for tier in tiers:
        rng.shuffle(tier)
        combos.extend(tier)
    chosen = combos[:count] + [rng.choice(combos) for _ in range(count - len(combos))]
    rng.shuffle(chosen)
    return [(s, _name(s, a, w)) for s, a, w in chosen]


def _name(stem: int, situation: int, way: int) -> str:
    parts = [STEMS[stem][1]]
    if situation >= 0:
        parts.append(SITUATIONS[situation])
    if way >= 0:
        parts.append(WAYS[way])
    return " ".join(parts)


def _procedure(rng: random.Random, code: str, stem: int, name: str) -> Record:
    field, _, result = STEMS[stem]
    levels = _levels(rng, field)
    channels = sorted(rng.sample(CHANNELS, rng.choice((1, 2, 2, 3, 3))))
    performers = [_agency_at(field, level) for level in levels]
    authority = _authority(rng, field, levels[0])
    online = "2" in channels
    fees = _fee_plan(rng, field)
    return {
        "MATTHC": code,
        "TENTTHC": name,
        "LOAITTHC": rng.choice(("1", "1", "2")),
        "CAPTHUCHIEN": [{"TENCAP": level} for level in levels],
        "LINHVUCTHUCHIEN": [{"MALINHVUC": field.code, "TENLINHVUC": field.name}],
        "TRINHTUTHUCHIEN": _sequence(rng, performers[-1], online, bool(fees)),
        "CACHTHUCTHUCHIEN": _channels(rng, channels, fees),
        "THANHPHANHOSO": _documents(rng, field),
        "YEUCAU": rng.choice(("Không", "Không", *REQUIREMENTS)),
        "DOITUONGTHUCHIEN": [{"TENDOITUONG": s} for s in _some(rng, SUBJECTS, 1, 3)],
        "KETQUATHUCHIEN": [{"MAKETQUA": "KQ01", "TENKETQUA": result}],
        "CANCUPHAPLY": _laws(rng, field),
        "COQUANTHUCHIEN": [_agency_ref(a) for a in performers],
        "COQUANCOTHAMQUYEN": [_agency_ref(authority)],
        "COQUANDUOCUYQUYEN": _maybe_agency(rng, 0.15, field.department),
        "COQUANPHOIHOP": _maybe_agency(rng, 0.25, rng.choice(AGENCIES[11:21]).code),
        "DIACHITIEPNHAN": _reception(performers[-1]),
        "MUCDO": rng.choice(("TOANTRINH", "MOTPHAN")) if online else "",
        "COBUUCHINH": "1" if "3" in channels else "0",
        "THANHTOANTRUCTUYEN": "1" if online and fees and rng.random() < 0.7 else "0",
        "GUISMS": rng.choice(("0", "1")),
        "MOTCUA": "1" if rng.random() < 0.9 else "0",
        "LIENTHONG": "1" if rng.random() < 0.2 else "0",
        "TRANGTHAI": "1",
    }


def _some(rng: random.Random, pool: Sequence[str], low: int, high: int) -> list[str]:
    """Between low and high items of pool, in pool order."""
    picked = set(rng.sample(range(len(pool)), rng.randint(low, min(high, len(pool)))))
    return [item for i, item in enumerate(pool) if i in picked]


def _levels(rng: random.Random, field: Field) -> list[str]:
    levels = _some(rng, field.levels, 1, 2)
    return sorted(levels, key=LEVELS.index)


def _agency_at(field: Field, level: str) -> Agency:
    code = {_BO: field.ministry, _TINH: field.department, _HUYEN: DISTRICT}.get(level, COMMUNE)
    return _AGENCY_BY_CODE[code]


def _authority(rng: random.Random, field: Field, level: str) -> Agency:
    if level == _TINH and rng.random() < 0.4:
        return _AGENCY_BY_CODE[PROVINCE]
    return _agency_at(field, level)


def _agency_ref(agency: Agency) -> dict[str, str]:
    return {"MADONVI": agency.code, "TENDONVI": agency.name}


def _maybe_agency(rng: random.Random, chance: float, code: str) -> list[dict[str, str]]:
    return [_agency_ref(_AGENCY_BY_CODE[code])] if rng.random() < chance else []


def _reception(agency: Agency) -> str:
    if agency.level == "2":
        return "Trung tâm Phục vụ hành chính công tỉnh Nghệ An, số 16 Trường Thi, TP Vinh"
    return f"Bộ phận Một cửa - {agency.name}"


def _sequence(rng: random.Random, agency: Agency, online: bool, paid: bool) -> list[Record]:
    cases = [("", "tại Bộ phận Một cửa")]
    if online and rng.random() < 0.25:
        cases = [
            ("Trường hợp nộp hồ sơ trực tiếp", "tại Bộ phận Một cửa"),
            ("Trường hợp nộp hồ sơ trực tuyến", "qua Cổng Dịch vụ công quốc gia"),
        ]
    return [
        {"TRUONGHOP": case, "TRINHTU": _steps(rng, agency, where, paid)} for case, where in cases
    ]


def _steps(rng: random.Random, agency: Agency, where: str, paid: bool) -> list[dict[str, str]]:
    steps = [
        f"Tổ chức, cá nhân chuẩn bị hồ sơ theo quy định và nộp {where}",
        "Công chức tiếp nhận kiểm tra tính đầy đủ, hợp lệ của hồ sơ; hồ sơ chưa đầy đủ thì "
        "hướng dẫn bổ sung một lần",
        f"{agency.name} thẩm định hồ sơ, trình người có thẩm quyền quyết định",
        "Trả kết quả cho tổ chức, cá nhân theo hình thức đã đăng ký",
    ]
    if paid and rng.random() < 0.5:
        steps.insert(3, "Tổ chức, cá nhân nộp phí, lệ phí theo quy định")
    if rng.random() < 0.2:
        del steps[2]
    return [{"TENTRINHTU": f"Bước {i}: {text}"} for i, text in enumerate(steps, 1)]


def _fee_plan(rng: random.Random, field: Field) -> list[tuple[str, str, int]]:
    """(MAPHILEPHI, MOTA, amount) of each fee; [] for a free procedure."""
    roll = rng.random()
    if not field.fee or roll < 0.3:
        return []
    if roll < 0.4:
        return [("LP01", f"{field.fee} (miễn thu)", 0)]
    fees = [("LP01", field.fee, rng.choice(FEE_AMOUNTS))]
    if roll > 0.85:
        fees.append(("PHI01", "Phí thẩm định hồ sơ", rng.choice(FEE_AMOUNTS)))
    return fees


def _channels(
    rng: random.Random, channels: list[str], fees: list[tuple[str, str, int]]
) -> list[Record]:
    amount, unit = rng.choice(TIMES)
    online_discount = rng.random() < 0.5
    return [
        {"KENH": channel, "THOIGIAN": [_time(channel, amount, unit, fees, online_discount)]}
        for channel in channels
    ]


def _time(
    channel: str, amount: str, unit: str, fees: list[tuple[str, str, int]], discount: bool
) -> Record:
    halve = discount and channel == "2"
    return {
        "THOIGIANGIAIQUYET": amount,
        "DONVITINH": unit,
        "MOTA": f"{CHANNEL_NOTES[channel]}: {amount} {unit.lower()} kể từ khi nhận đủ hồ sơ",
        "PHILEPHI": [
            {
                "MAPHILEPHI": fee_code,
                "SOTIEN": str(value // 2 if halve else value),
                "DONVI": "Đồng",
                "MOTA": f"{text} (giảm 50% khi nộp trực tuyến)" if halve and value else text,
            }
            for fee_code, text, value in fees
        ],
    }


def _documents(rng: random.Random, field: Field) -> list[Record]:
    """One group of documents (1-8 papers), or two cases of up to 4 each; the application
    form, with its template, heads every group."""
    cases, most = [""], 7
    if rng.random() < 0.2:
        cases = [
            "Trường hợp cá nhân trực tiếp thực hiện",
            "Trường hợp ủy quyền cho người khác thực hiện",
        ]
        most = 3
    form, others = field.documents[0], (*field.documents[1:], *COMMON_DOCUMENTS)
    numbered = 0
    result: list[Record] = []
    for case in cases:
        papers = []
        for name in [form, *_some(rng, others, 0, most)]:
            numbered += 1
            papers.append(_paper(rng, numbered, name, name == form))
        result.append({"TRUONGHOP": case, "GIAYTO": papers})
    return result


def _paper(rng: random.Random, number: int, name: str, is_form: bool) -> dict[str, str]:
    if is_form:
        url = f"{DOWNLOAD_URL}{rng.getrandbits(64):016x}"
        return {
            "MAGIAYTO": f"GT{number:03d}",
            "TENGIAYTO": name,
            "TENMAUDON": "Mẫu 01.docx",
            "URL": url,
            "SOBANCHINH": "1",
            "SOBANSAO": "0",
        }
    original = rng.random() < 0.5
    return {
        "MAGIAYTO": f"GT{number:03d}",
        "TENGIAYTO": name,
        "TENMAUDON": "",
        "URL": "",
        "SOBANCHINH": "1" if original else "0",
        "SOBANSAO": rng.choice(("0", "1", "2")) if original else "1",
    }


def _laws(rng: random.Random, field: Field) -> list[dict[str, str]]:
    pool = (*field.laws, *COMMON_LAWS)
    picked = set(rng.sample(range(len(pool)), rng.randint(1, 4)))
    return [
        {"SOVANBAN": number, "TENVANBAN": title}
        for i, (number, title) in enumerate(pool)
        if i in picked
    ]


# -- the catalogue ------------------------------------------------------------------------------


def _copy(value: Any) -> Any:
    """A deep copy that also proves the value is JSON (raises ValueError/TypeError if not)."""
    return json.loads(json.dumps(value, ensure_ascii=False))


class UnknownProcedure(KeyError):
    """The catalogue holds no procedure under this code."""


class Catalogue:
    """The procedures the portal serves, by code, plus broken answers injected per code.

    A code in `raw_replies` is listed by `LayDanhSachTTHC` (whether or not a record exists)
    and `LayThuTuc` answers it with the injected reply: a `str` is the whole HTTP body (not
    JSON, say), a dict is served as the `result` record however wrong it is.
    """

    def __init__(self, records: Mapping[str, Record] | None = None) -> None:
        self.records: dict[str, Record] = {}
        self.raw_replies: dict[str, RawReply] = {}
        if records:
            self.load(records)

    def load(self, records: Mapping[str, Record]) -> None:
        """Replace the whole catalogue (injected replies included) with `records`."""
        self.records = {}
        self.raw_replies = {}
        for record in records.values():
            self.put(record)

    def put(self, record: Record) -> str:
        """Add a procedure or replace the one with its code; returns the code."""
        if not isinstance(record, dict):
            raise ValueError("a record must be a JSON object")
        code = record.get("MATTHC")
        if not isinstance(code, str) or not code.strip():
            raise ValueError("a record needs MATTHC (use set_raw to serve one without)")
        self.records[code] = _copy(record)
        return code

    def remove(self, code: str) -> None:
        """Withdraw a procedure (and any reply injected for it)."""
        if code not in self.records and code not in self.raw_replies:
            raise UnknownProcedure(f"procedure {code} is not in the catalogue")
        self.records.pop(code, None)
        self.raw_replies.pop(code, None)

    def set_fee(
        self,
        code: str,
        amount: str,
        channel_index: int = 0,
        time_index: int = 0,
        fee_index: int = 0,
    ) -> None:
        """Revise one fee (SOTIEN, whole VND as digits); adds the fee if there is none there."""
        if not isinstance(amount, str) or not amount.isdigit():
            raise ValueError(
                f"amount must be whole VND as digits (set_raw for bad data): {amount!r}"
            )
        channel = self._record(code)["CACHTHUCTHUCHIEN"][channel_index]
        fees: list[dict[str, str]] = channel["THOIGIAN"][time_index]["PHILEPHI"]
        if fee_index == len(fees):
            fees.append(
                {
                    "MAPHILEPHI": f"LP{fee_index + 1:02d}",
                    "SOTIEN": amount,
                    "DONVI": "Đồng",
                    "MOTA": "Lệ phí",
                }
            )
        else:
            fees[fee_index]["SOTIEN"] = amount

    def rename(self, code: str, name: str) -> None:
        """Change a procedure's wording (TENTTHC)."""
        if not isinstance(name, str) or not name.strip():
            raise ValueError("a procedure name must be a non-empty string")
        self._record(code)["TENTTHC"] = name

    def set_raw(self, code: str, reply: RawReply) -> None:
        """From now on `LayThuTuc` for `code` answers with `reply` (see the class docstring)."""
        if not isinstance(code, str) or not code:
            raise ValueError("code must be a non-empty string")
        if not isinstance(reply, str | dict):
            raise ValueError("reply must be a string (the raw body) or an object (the result)")
        self.raw_replies[code] = reply if isinstance(reply, str) else _copy(reply)

    def clear_raw(self, code: str) -> None:
        """Answer `code` from its record again."""
        self.raw_replies.pop(code, None)

    def listing(self) -> list[dict[str, str]]:
        """`LayDanhSachTTHC`'s result: every listed code with its name, sorted by code."""
        return [{"MATTHC": code, "TENTTHC": self._name(code)} for code in self.codes()]

    def lookup(self, code: str) -> RawReply | None:
        """What `LayThuTuc` serves for `code`: an injected reply, else the record, else None."""
        if code in self.raw_replies:
            return self.raw_replies[code]
        return self.records.get(code)

    def codes(self) -> list[str]:
        return sorted(self.records.keys() | self.raw_replies.keys())

    def summary(self) -> dict[str, Any]:
        return {
            "count": len(self.records),
            "codes": len(self.records.keys() | self.raw_replies.keys()),
            "raw": sorted(self.raw_replies),
        }

    def apply(self, op: Mapping[str, Any]) -> None:
        """One control operation, as `POST <url>/_sim/catalogue` carries it; ValueError if bad.

        {"op": "generate", "count": N, "seed": S} | {"op": "load", "records": [record, ...]} |
        {"op": "put", "record": {...}} | {"op": "remove", "code": C} |
        {"op": "set_fee", "code": C, "amount": "60000", "channel_index": 0, "time_index": 0,
        "fee_index": 0} | {"op": "rename", "code": C, "name": N} |
        {"op": "set_raw", "code": C, "reply": "<body>" | {...}} | {"op": "clear_raw", "code": C}
        """
        name = op.get("op")
        action = _OPS.get(name) if isinstance(name, str) else None
        if action is None:
            raise ValueError(f"op must be one of {sorted(_OPS)}, got {name!r}")
        try:
            action(self, op)
        except UnknownProcedure as exc:
            raise ValueError(exc.args[0]) from exc
        except KeyError as exc:
            raise ValueError(f"{name} needs the field {exc}") from exc
        except (TypeError, IndexError) as exc:
            raise ValueError(f"bad {op.get('op')} operation: {exc}") from exc

    def _record(self, code: str) -> Record:
        record = self.records.get(code)
        if record is None:
            raise UnknownProcedure(f"procedure {code} is not in the catalogue")
        return record

    def _name(self, code: str) -> str:
        source = self.records.get(code) or self.raw_replies.get(code)
        name = source.get("TENTTHC") if isinstance(source, dict) else None
        return name if isinstance(name, str) else ""


def _op_generate(catalogue: Catalogue, op: Mapping[str, Any]) -> None:
    seed = op.get("seed", 1)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an integer, got {seed!r}")
    catalogue.load(generate(op["count"], seed))


def _op_load(catalogue: Catalogue, op: Mapping[str, Any]) -> None:
    records = op["records"]
    if not isinstance(records, list):
        raise ValueError("records must be a list of procedure records")
    fresh = Catalogue()
    for record in records:
        fresh.put(record)
    catalogue.load(fresh.records)


def _op_put(catalogue: Catalogue, op: Mapping[str, Any]) -> None:
    catalogue.put(op["record"])


def _op_set_fee(catalogue: Catalogue, op: Mapping[str, Any]) -> None:
    indexes = {k: op.get(k, 0) for k in ("channel_index", "time_index", "fee_index")}
    if any(isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in indexes.values()):
        raise ValueError(f"indexes must be non-negative integers, got {indexes}")
    catalogue.set_fee(_code(op), op["amount"], **indexes)


def _code(op: Mapping[str, Any]) -> str:
    code = op["code"]
    if not isinstance(code, str) or not code:
        raise ValueError(f"code must be a non-empty string, got {code!r}")
    return code


_OPS: dict[str, Callable[[Catalogue, Mapping[str, Any]], None]] = {
    "generate": _op_generate,
    "load": _op_load,
    "put": _op_put,
    "remove": lambda c, op: c.remove(_code(op)),
    "set_fee": _op_set_fee,
    "rename": lambda c, op: c.rename(_code(op), op["name"]),
    "set_raw": lambda c, op: c.set_raw(_code(op), op["reply"]),
    "clear_raw": lambda c, op: c.clear_raw(_code(op)),
}
